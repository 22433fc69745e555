"""Loaders: the three layouts, decoding, line splitting, format detection and every error."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hennframework.data import (
    ReviewDataset,
    decode_bytes,
    detect_format,
    interleave,
    load_aclimdb,
    load_polarity,
    load_reviews,
    load_reviews_and_labels,
    parse_label,
    split_lines,
    train_test_split_last,
)
from hennframework.exceptions import DataFormatError, InputError

# ---------------------------------------------------------------------------- helpers


def write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def pair(tmp_path: Path, reviews: bytes | str, labels: bytes | str) -> tuple[Path, Path]:
    return write(tmp_path / "reviews.txt", reviews), write(tmp_path / "labels.txt", labels)


# ---------------------------------------------------------------------------- decoding / lines


def test_split_lines_only_newline_ends_a_line() -> None:
    assert split_lines("a\x85b\u2028c\x0cd\nnext\n") == ["a\x85b\u2028c\x0cd", "next"]
    assert split_lines("a\r\nb\r\n") == ["a", "b"]
    assert split_lines("a\nb") == ["a", "b"]
    assert split_lines("") == []
    assert split_lines("a\n\nb\n") == ["a", "", "b"]
    assert split_lines("a\r\r\n") == ["a\r"]  # only one trailing CR is a line ending


@settings(max_examples=60)
@given(st.lists(st.text(alphabet=st.characters(blacklist_characters="\n\r")), min_size=1))
def test_split_lines_round_trip(lines: list[str]) -> None:
    text = "\n".join(lines) + "\n"
    assert split_lines(text) == lines
    assert split_lines(text.replace("\n", "\r\n")) == lines


def test_decode_utf8_and_bom() -> None:
    assert decode_bytes(b"plain") == ("plain", "ascii")
    assert decode_bytes("café\n".encode()) == ("café\n", "utf-8")
    assert decode_bytes(b"\xef\xbb\xbfhi") == ("hi", "utf-8")


def test_decode_falls_back_to_cp1252_with_latin1_for_undefined_bytes() -> None:
    text, used = decode_bytes(b"it's good \x85 really \x93yes\x94 \x81\x8d\x8f\x90\x9d")
    assert used == "windows-1252"
    assert text == "it's good \u2026 really \u201cyes\u201d \x81\x8d\x8f\x90\x9d"


@settings(max_examples=60)
@given(st.binary(max_size=200))
def test_decode_auto_never_fails_and_keeps_every_line(data: bytes) -> None:
    text, _ = decode_bytes(data)
    assert text.count("\n") == data.count(b"\n")


def test_decode_explicit_encoding_errors_name_line_and_byte() -> None:
    with pytest.raises(
        DataFormatError,
        match=r"f.txt cannot be decoded as 'utf-8': byte 0xe9 at offset 7 \(line 2\)",
    ):
        decode_bytes(b"first\nb\xe9d\n", "utf-8", source="f.txt")
    with pytest.raises(DataFormatError, match="unknown encoding 'no-such-codec'"):
        decode_bytes(b"x", "no-such-codec")
    assert decode_bytes(b"caf\xe9", "latin-1") == ("café", "latin-1")
    assert decode_bytes(b"\xef\xbb\xbfhi", "UTF8") == ("hi", "UTF8")


# ---------------------------------------------------------------------------- reviews + labels


def test_reviews_labels_pair_with_label_spellings(tmp_path: Path) -> None:
    r, lab = pair(
        tmp_path,
        "good film \nbad film \nok\nmeh\nyes\nno\n",
        "POSITIVE\nnegative\n1\n0\nPos\n NEG \n",
    )
    ds = load_reviews_and_labels(r, lab)
    assert ds.reviews == ["good film ", "bad film ", "ok", "meh", "yes", "no"]
    assert ds.labels.tolist() == [1, 0, 1, 0, 1, 0]
    assert ds.labels.dtype == np.int8
    assert ds.encoding == "ascii" and ds.format == "reviews-labels"
    assert str(r) in ds.source and str(lab) in ds.source


def test_crlf_and_cp1252_with_0x85_inside_a_line(tmp_path: Path) -> None:
    r, lab = pair(tmp_path, b"so good \x85 really\r\nawful\r\n", b"positive\r\nnegative\r\n")
    ds = load_reviews((r, lab))
    assert ds.reviews == ["so good \u2026 really", "awful"]
    assert ds.encoding == "windows-1252"
    # a forced latin-1 decode keeps U+0085 inside the review rather than splitting there
    ds_latin = load_reviews((r, lab), encoding="latin-1")
    assert ds_latin.reviews[0] == "so good \x85 really" and len(ds_latin) == 2


def test_no_final_newline_and_final_newline_give_same_count(tmp_path: Path) -> None:
    r, lab = pair(tmp_path, "a\nb", "positive\nnegative\n")
    assert len(load_reviews_and_labels(r, lab)) == 2


def test_mismatched_line_counts_name_both_files_and_counts(tmp_path: Path) -> None:
    r, lab = pair(tmp_path, "a\nb\nc\n", "positive\nnegative\n")
    with pytest.raises(DataFormatError) as info:
        load_reviews_and_labels(r, lab)
    msg = str(info.value)
    assert "3 lines" in msg and "has 2" in msg and str(r) in msg and str(lab) in msg


def test_unknown_label_names_label_line_and_accepted(tmp_path: Path) -> None:
    r, lab = pair(tmp_path, "a\nb\nc\n", "positive\nnegative\nneutral\n")
    with pytest.raises(
        DataFormatError, match=r"unknown label 'neutral'.*line 3.*positive/negative"
    ):
        load_reviews_and_labels(r, lab)


def test_parse_label() -> None:
    assert parse_label(" Positive ") == 1 and parse_label("0") == 0
    with pytest.raises(DataFormatError, match="'2'"):
        parse_label("2")


def test_empty_files_are_refused(tmp_path: Path) -> None:
    r, lab = pair(tmp_path, "", "positive\n")
    with pytest.raises(DataFormatError, match=r"reviews file .* is empty"):
        load_reviews_and_labels(r, lab)
    r, lab = pair(tmp_path, "\n\n", "positive\n")
    with pytest.raises(DataFormatError, match="is empty"):
        load_reviews_and_labels(r, lab)
    r, lab = pair(tmp_path, "a\n", "")
    with pytest.raises(DataFormatError, match=r"labels file .* is empty"):
        load_reviews_and_labels(r, lab)


def test_empty_review_line_error_or_skip(tmp_path: Path) -> None:
    r, lab = pair(tmp_path, "a\n\nc\n  \n", "positive\nnegative\nnegative\npositive\n")
    with pytest.raises(DataFormatError, match=r"empty review at lines 2, 4.*skip_empty=True"):
        load_reviews_and_labels(r, lab)
    with pytest.warns(UserWarning, match="skipped 2 empty"):
        ds = load_reviews_and_labels(r, lab, skip_empty=True)
    assert ds.reviews == ["a", "c"] and ds.labels.tolist() == [1, 0]
    assert ds.notes and "lines 2, 4" in ds.notes[0]


def test_blank_label_is_an_unknown_label(tmp_path: Path) -> None:
    r, lab = pair(tmp_path, "a\nb\n", "positive\n\n")
    with pytest.raises(DataFormatError, match=r"unknown label '' .*line 2"):
        load_reviews_and_labels(r, lab, skip_empty=True)


def test_missing_and_unreadable_paths_are_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope.txt"
    with pytest.raises(DataFormatError, match=r"nope\.txt.*does not exist"):
        load_reviews_and_labels(missing, tmp_path / "labels.txt")
    with pytest.raises(DataFormatError, match="is a directory"):
        load_reviews_and_labels(tmp_path, tmp_path)
    with pytest.raises(DataFormatError, match="does not exist"):
        load_reviews(missing)


def test_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    r, lab = pair(tmp_path, "a\n", "positive\n")

    def deny(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "read_bytes", deny)
    with pytest.raises(DataFormatError, match=r"cannot read reviews file .*Permission denied"):
        load_reviews_and_labels(r, lab)


def test_explicit_encoding_that_does_not_fit(tmp_path: Path) -> None:
    r, lab = pair(tmp_path, b"ok\nbad \x85 byte\n", b"positive\nnegative\n")
    with pytest.raises(DataFormatError, match=r"cannot be decoded as 'utf-8'.*line 2"):
        load_reviews((r, lab), encoding="utf-8")


# ---------------------------------------------------------------------------- polarity


def polarity_dir(tmp_path: Path) -> Path:
    d = tmp_path / "rt"
    write(d / "rt-polarity.pos", b"great \x85 fun . \ngood . \nfine . \n")
    write(d / "rt-polarity.neg", b"dull . \r\nbad \x93movie\x94 . \r\n")
    return d


def test_polarity_directory_file_and_pair(tmp_path: Path) -> None:
    d = polarity_dir(tmp_path)
    for source in (
        d,
        d / "rt-polarity.pos",
        d / "rt-polarity.neg",
        (d / "rt-polarity.pos", d / "rt-polarity.neg"),
    ):
        ds = load_reviews(source)
        assert ds.format == "polarity"
        assert ds.reviews == [
            "great \u2026 fun . ",
            "good . ",
            "fine . ",
            "dull . ",
            "bad \u201cmovie\u201d . ",
        ]
        assert ds.labels.tolist() == [1, 1, 1, 0, 0]
        assert ds.encoding == "windows-1252"
        assert ds.n_positive == 3 and ds.n_negative == 2


def test_polarity_errors(tmp_path: Path) -> None:
    d = polarity_dir(tmp_path)
    (d / "rt-polarity.neg").unlink()
    with pytest.raises(DataFormatError, match="does not exist"):
        load_polarity(d / "rt-polarity.pos")
    with pytest.raises(DataFormatError, match=r"exactly one <name>\.pos / <name>\.neg pair"):
        load_polarity(d)
    write(d / "rt-polarity.neg", b"")
    with pytest.raises(DataFormatError, match=r"negative reviews file .* is empty"):
        load_polarity(d)
    write(d / "rt-polarity.neg", b"bad\n\nworse\n")
    with pytest.raises(DataFormatError, match="empty review at line 2"):
        load_polarity(d)
    with pytest.warns(UserWarning, match="skipped 1 empty"):
        assert len(load_polarity(d, skip_empty=True)) == 5


# ---------------------------------------------------------------------------- aclImdb


def imdb_root(tmp_path: Path) -> Path:
    root = tmp_path / "aclImdb"
    write(root / "train" / "pos" / "10_9.txt", "Second.<br /><br />Great café!")
    write(root / "train" / "pos" / "0_8.txt", "First <BR/>line\r\nnext")
    write(root / "train" / "neg" / "3_1.txt", b"Bad \x85 film")
    write(root / "test" / "pos" / "0_10.txt", "test pos")
    write(root / "test" / "neg" / "0_2.txt", "test neg")
    (root / "train" / "unsup").mkdir()
    return root


def test_aclimdb_split_order_and_html(tmp_path: Path) -> None:
    root = imdb_root(tmp_path)
    ds = load_reviews(root)
    assert ds.format == "aclimdb"
    assert ds.reviews == ["First  line next", "Second.  Great café!", "Bad \u2026 film"]
    assert ds.labels.tolist() == [1, 1, 0]
    assert ds.encoding == "utf-8 + windows-1252"
    test = load_reviews(root, split="test")
    assert test.reviews == ["test pos", "test neg"]
    assert load_aclimdb(root / "test").reviews == test.reviews  # a split folder directly


def test_aclimdb_errors(tmp_path: Path) -> None:
    root = imdb_root(tmp_path)
    with pytest.raises(DataFormatError, match=r"no split 'dev'.*splits found: test, train"):
        load_aclimdb(root, "dev")
    with pytest.raises(DataFormatError, match="not a directory"):
        load_aclimdb(tmp_path / "missing")
    write(root / "test" / "neg" / "1_1.txt", "  ")
    with pytest.raises(DataFormatError, match=r"1_1\.txt' is empty"):
        load_aclimdb(root, "test")
    with pytest.warns(UserWarning, match="skipped 1 empty review file"):
        assert len(load_aclimdb(root, "test", skip_empty=True)) == 2
    for f in (root / "test" / "neg").iterdir():
        f.unlink()
    with pytest.raises(DataFormatError, match=r"holds no \*\.txt"):
        load_aclimdb(root, "test")
    with pytest.raises(DataFormatError, match="not a pair"):
        load_reviews((root, root), format="aclimdb")


# ---------------------------------------------------------------------------- detection


def test_detect_format(tmp_path: Path) -> None:
    assert detect_format(polarity_dir(tmp_path)) == "polarity"
    assert detect_format(imdb_root(tmp_path)) == "aclimdb"
    assert detect_format(tmp_path / "aclImdb" / "train") == "aclimdb"
    udacity = tmp_path / "udacity"
    r, lab = pair(udacity, "a\n", "positive\n")
    assert detect_format(udacity) == "reviews-labels"
    assert detect_format(r) == "reviews-labels"
    assert load_reviews(r).reviews == ["a"]
    assert load_reviews(udacity, format="udacity").labels.tolist() == [1]
    assert detect_format((r, lab)) == "reviews-labels"
    assert detect_format((tmp_path / "x.pos", tmp_path / "x.neg")) == "polarity"


def test_detect_format_errors(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataFormatError, match="cannot tell the dataset format of directory"):
        detect_format(tmp_path / "empty")
    lonely = write(tmp_path / "data.csv", "a\n")
    with pytest.raises(DataFormatError, match="cannot tell the dataset format of file"):
        load_reviews(lonely)
    with pytest.raises(DataFormatError, match="no labels file found"):
        load_reviews(write(tmp_path / "solo" / "reviews.txt", "a\n"), format="reviews-labels")
    with pytest.raises(DataFormatError, match=r"line 1: no comma in 'a'"):
        load_reviews(lonely, format="csv")
    with pytest.raises(
        DataFormatError, match=r"unknown dataset format 'xml'.*auto, tsv, csv, pair"
    ):
        load_reviews(lonely, format="xml")


# ---------------------------------------------------------------------------- protocol helpers


def make(labels: list[int]) -> ReviewDataset:
    return ReviewDataset(
        [f"r{i}" for i in range(len(labels))], np.array(labels, np.int8), "test", "utf-8"
    )


def test_interleave_alternates_and_appends_surplus() -> None:
    mixed = interleave(make([1, 1, 1, 0, 0]))
    assert mixed.reviews == ["r0", "r3", "r1", "r4", "r2"]
    assert mixed.labels.tolist() == [1, 0, 1, 0, 1]
    assert "interleaved" in mixed.source


@settings(max_examples=50)
@given(st.lists(st.integers(0, 1), max_size=40))
def test_interleave_is_a_stable_permutation(labels: list[int]) -> None:
    ds = make(labels)
    mixed = interleave(ds)
    assert sorted(mixed.reviews) == sorted(ds.reviews)
    for cls in (0, 1):
        original = [r for r, lab in zip(ds.reviews, labels, strict=True) if lab == cls]
        assert [
            r for r, lab in zip(mixed.reviews, mixed.labels, strict=True) if lab == cls
        ] == original
    k = min(labels.count(0), labels.count(1))
    assert mixed.labels[: 2 * k].tolist() == [1, 0] * k


def test_train_test_split_last() -> None:
    train, test = train_test_split_last(make([1, 0, 1, 0, 1]), 2)
    assert train.reviews == ["r0", "r1", "r2"] and test.reviews == ["r3", "r4"]
    assert test.labels.tolist() == [0, 1]
    for bad in (0, 5, -1):
        with pytest.raises(InputError, match=f"test_size {bad} does not fit 5 reviews"):
            train_test_split_last(make([1, 0, 1, 0, 1]), bad)
    train, test = train_test_split_last(make([1, 0, 1, 0, 1]), 0.4)
    assert len(train) == 3 and len(test) == 2


def test_review_dataset_validation() -> None:
    with pytest.raises(InputError, match="one label per review"):
        ReviewDataset(["a"], np.array([1, 0]), "s", "utf-8")
    with pytest.raises(InputError, match="must be 0"):
        ReviewDataset(["a"], np.array([2]), "s", "utf-8")


def test_no_warnings_on_clean_input(tmp_path: Path) -> None:
    r, lab = pair(tmp_path, "a\nb\n", "positive\nnegative\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_reviews((r, lab))
