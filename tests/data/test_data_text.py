"""Preprocessing: the counting, polarity and vocabulary rules, and the CSR encoding."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hennframework.data import (
    EncodedReviews,
    Vocabulary,
    build_vocabulary,
    count_words,
    polarity_scores,
)
from hennframework.exceptions import DataFormatError, InputError


def course_vocabulary(
    reviews: list[str], labels: list[str], polarity_cutoff: float, min_count: int
) -> set[str]:
    """The Udacity/Trask project-6 ``pre_process_data`` rules, written as the original project does."""
    positive_counts: Counter[str] = Counter()
    negative_counts: Counter[str] = Counter()
    total_counts: Counter[str] = Counter()
    for i in range(len(reviews)):
        if labels[i] == "POSITIVE":
            for word in reviews[i].split(" "):
                positive_counts[word] += 1
                total_counts[word] += 1
        else:
            for word in reviews[i].split(" "):
                negative_counts[word] += 1
                total_counts[word] += 1
    pos_neg_ratios: dict[str, float] = {}
    for term, cnt in list(total_counts.most_common()):
        if cnt >= 50:
            pos_neg_ratios[term] = positive_counts[term] / float(negative_counts[term] + 1)
    for word, ratio in list(pos_neg_ratios.items()):
        if ratio > 1:
            pos_neg_ratios[word] = np.log(ratio)
        else:
            pos_neg_ratios[word] = -np.log(1 / (ratio + 0.01))
    review_vocab = set()
    for review in reviews:
        for word in review.split(" "):
            if total_counts[word] > min_count:
                if word in pos_neg_ratios:
                    if (
                        pos_neg_ratios[word] >= polarity_cutoff
                        or pos_neg_ratios[word] <= -polarity_cutoff
                    ):
                        review_vocab.add(word)
                else:
                    review_vocab.add(word)
    return review_vocab


def test_counts_are_occurrences_and_keep_empty_words() -> None:
    counts = count_words(["good good film ", "bad  film"], [1, 0])
    assert counts.positive == Counter({"good": 2, "film": 1, "": 1})
    assert counts.negative == Counter({"bad": 1, "": 1, "film": 1})
    assert counts.total["film"] == 2 and counts.total[""] == 2


def test_polarity_score_formula_and_threshold() -> None:
    reviews = ["up"] * 60 + ["down"] * 59 + ["mixed"] * 30 + ["mixed"] * 30 + ["rare"] * 49
    labels = [1] * 60 + [0] * 59 + [1] * 30 + [0] * 30 + [1] * 49
    scores = polarity_scores(count_words(reviews, labels))
    assert scores["up"] == pytest.approx(math.log(60.0))
    assert scores["down"] == pytest.approx(-math.log(1 / 0.01))
    assert scores["mixed"] == pytest.approx(-math.log(1 / (30 / 31 + 0.01)))
    assert "rare" not in scores  # fewer than 50 occurrences: no score


def test_vocabulary_rules() -> None:
    reviews = ["up"] * 60 + ["down"] * 59 + ["mixed"] * 60 + ["eleven"] * 11 + ["ten"] * 10
    labels = [1] * 60 + [0] * 59 + [1, 0] * 30 + [1] * 11 + [0] * 10
    vocab = build_vocabulary(reviews, labels, min_count=10, polarity_cutoff=0.1)
    # "mixed": ratio 30/31 -> score -0.0225, inside the cutoff; "ten": not more than 10 times
    assert vocab.words == ("down", "eleven", "up")
    assert len(build_vocabulary(reviews, labels, min_count=10, polarity_cutoff=0.0)) == 4


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.lists(st.sampled_from("abcdefg") | st.just(""), min_size=1, max_size=8),
            st.booleans(),
        ),
        min_size=1,
        max_size=120,
    ),
    st.integers(0, 12),
    st.sampled_from([0.0, 0.05, 0.1, 0.5]),
)
def test_vocabulary_matches_course_code(
    rows: list[tuple[list[str], bool]], min_count: int, cutoff: float
) -> None:
    reviews = [" ".join(words * 7) for words, _ in rows]  # repetition so some words reach 50
    labels = [int(pos) for _, pos in rows]
    expected = course_vocabulary(
        reviews, ["POSITIVE" if y else "NEGATIVE" for y in labels], cutoff, min_count
    )
    assert set(build_vocabulary(reviews, labels, min_count, cutoff).words) == expected


def test_build_vocabulary_input_errors() -> None:
    with pytest.raises(InputError, match="one label per review"):
        build_vocabulary(["a"], [1, 0])
    with pytest.raises(InputError, match=">= 0"):
        build_vocabulary(["a"], [1], min_count=-1)


def test_encode_unique_sorted_known_words() -> None:
    vocab = Vocabulary(["bad", "film", "good"])
    enc = vocab.encode("good film good unknown bad")
    assert enc.dtype == np.int32 and enc.tolist() == [0, 1, 2]
    assert vocab.encode("nothing known").tolist() == []
    assert "good" in vocab and vocab.index("film") == 1 and len(vocab) == 3
    with pytest.raises(InputError, match="unique"):
        Vocabulary(["a", "a"])


def test_vocabulary_json_round_trip_and_errors() -> None:
    vocab = Vocabulary(["", "a", "ü"])
    assert Vocabulary.from_json(vocab.to_json()) == vocab
    for bad in (
        "{",
        "[]",
        '{"kind": "other", "version": 1, "words": []}',
        '{"kind": "hennframework.vocabulary", "version": 1, "words": [1]}',
    ):
        with pytest.raises(DataFormatError):
            Vocabulary.from_json(bad)


def test_encoded_reviews_csr() -> None:
    vocab = Vocabulary(["a", "b", "c"])
    enc = vocab.encode_many(["a b", "zzz", "c a c", "b"], [1, 0, 1, 0])
    assert enc.offsets.tolist() == [0, 2, 2, 4, 5]
    assert enc.indices.tolist() == [0, 1, 0, 2, 1]
    assert enc[2].tolist() == [0, 2] and enc[1].tolist() == []
    assert enc.lengths.tolist() == [2, 0, 2, 1] and len(enc) == 4
    assert [x.tolist() for x in enc.split_list()] == [[0, 1], [], [0, 2], [1]]
    part = enc.slice(1, 3)
    assert part.offsets.tolist() == [0, 0, 2] and part.labels.tolist() == [0, 1]
    assert vocab.encode_many(["a"]).labels.tolist() == [-1]


def test_encoded_reviews_validation() -> None:
    i32, i64, i8 = np.int32, np.int64, np.int8
    with pytest.raises(InputError, match="offsets"):
        EncodedReviews(np.array([0], i32), np.array([0, 2], i64), np.array([1], i8), 3)
    with pytest.raises(InputError, match="labels"):
        EncodedReviews(np.array([0], i32), np.array([0, 1], i64), np.array([1, 0], i8), 3)
    with pytest.raises(InputError, match="word indices"):
        EncodedReviews(np.array([3], i32), np.array([0, 1], i64), np.array([1], i8), 3)
