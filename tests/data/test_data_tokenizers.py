"""Tokenizers: hand-written expected tokens for punctuation, apostrophes and other scripts."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hennframework.data import (
    TOKENIZERS,
    TextTokenizer,
    Vocabulary,
    build_vocabulary,
    make_tokenizer,
    split_on_spaces,
    split_words,
)
from hennframework.data.naming import command_line_names
from hennframework.exceptions import InputError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Good case, Excellent value.", ["Good", "case", ",", "Excellent", "value", "."]),
        ("Don't stop!!! It's great.", ["Don't", "stop", "!!!", "It's", "great", "."]),
        ("Zürich’s naïve café — très bien", ["Zürich’s", "naïve", "café", "—", "très", "bien"]),
        ("'quoted' words", ["'", "quoted", "'", "words"]),
        ("slow-moving, well-made", ["slow-moving", ",", "well-made"]),
        ("-dash- a--b", ["-", "dash", "-", "a", "--", "b"]),
        ("10/10 ... A+", ["10", "/", "10", "...", "A", "+"]),
        ("(great)?!", ["(", "great", ")", "?", "!"]),
        ("snake_case", ["snake", "_", "case"]),
        ("Ελληνικά ΚΑΛΟ Русский", ["Ελληνικά", "ΚΑΛΟ", "Русский"]),
        ("映画が好き", ["映画が好き"]),
        ("हिन्दी फ़िल्म अच्छी है!", ["हिन्दी", "फ़िल्म", "अच्छी", "है", "!"]),  # vowel signs stay
        ("great 😀😀 film", ["great", "😀😀", "film"]),
        ("tabs\tand\nnewlines  and\u00a0nbsp", ["tabs", "and", "newlines", "and", "nbsp"]),
        ("", []),
        ("   ", []),
    ],
)
def test_split_words(text: str, expected: list[str]) -> None:
    assert split_words(text) == expected


def test_split_words_joins_combining_accents() -> None:
    decomposed = "cafe\u0301 nai\u0308ve"
    assert split_words(decomposed) == ["café", "naïve"]  # NFC: one word each, not split at marks


def test_whitespace_is_trasks_rule_with_empty_words() -> None:
    tokenize = TextTokenizer("whitespace")
    assert tokenize("it 's a  fine film . ") == ["it", "'s", "a", "", "fine", "film", ".", ""]
    assert tokenize("Great!") == ["Great!"]  # punctuation stays attached, case kept
    assert split_on_spaces("a b") == ["a", "b"]


def test_lowercase_for_either_tokenizer() -> None:
    assert TextTokenizer("words", lowercase=True)("Great FILM, İstanbul!") == [
        "great",
        "film",
        ",",
        "i̇stanbul",
        "!",
    ]
    assert TextTokenizer("whitespace", lowercase=True)("Great FILM") == ["great", "film"]
    assert TextTokenizer("words", lowercase=True).describe() == "words, lower-cased"
    assert TextTokenizer().describe() == "whitespace"


def test_make_tokenizer_auto_follows_the_layout() -> None:
    assert TOKENIZERS == ("whitespace", "words")
    for fmt in ("polarity", "reviews-labels"):  # pre-tokenised: the 2017 rules, as they were
        assert make_tokenizer("auto", data_format=fmt) == TextTokenizer("whitespace", False)
    for fmt in ("tsv", "csv", "aclimdb", None):
        assert make_tokenizer("auto", data_format=fmt) == TextTokenizer("words", True)
    assert make_tokenizer("words", False) == TextTokenizer("words", False)
    assert make_tokenizer("WhiteSpace", True) == TextTokenizer("whitespace", True)


def test_unknown_tokenizer_names() -> None:
    with pytest.raises(InputError, match=r"unknown tokenizer 'spacy'; pass tokenizer="):
        make_tokenizer("spacy")
    with command_line_names(), pytest.raises(InputError, match="pass --tokenizer"):
        make_tokenizer("spacy")
    with pytest.raises(InputError, match="unknown tokenizer 'nltk'"):
        TextTokenizer("nltk")  # type: ignore[arg-type]


def test_vocabulary_with_the_words_tokenizer() -> None:
    reviews = ["Great film!", "GREAT fun.", "Awful film!", "awful, awful."]
    tokenize = make_tokenizer("words", True)
    vocab = build_vocabulary(reviews, [1, 1, 0, 0], min_count=1, tokenize=tokenize)
    assert vocab.words == ("!", ".", "awful", "film", "great")
    assert [vocab.words[i] for i in vocab.encode("Great, GREAT film!!")] == ["film", "great"]
    # with Trask's rules the same text gives different "words"
    plain = build_vocabulary(reviews, [1, 1, 0, 0], min_count=1)
    assert "film!" in plain.words and "great" not in plain.words
    assert Vocabulary(vocab.words, tokenize) == vocab


@settings(max_examples=80)
@given(st.text(max_size=60))
def test_split_words_tokens_have_no_spaces_and_cover_the_text(text: str) -> None:
    tokens = split_words(text)
    assert all(token and not any(c.isspace() for c in token) for token in tokens)
    import unicodedata

    normal = unicodedata.normalize("NFC", text)
    kept = "".join(c for c in normal if not c.isspace())
    assert "".join(tokens) == kept  # nothing but spaces is dropped, nothing is invented
