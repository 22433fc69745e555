"""One-file ``text<TAB>label`` / ``text,label`` data, files that are not text, and error wording."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from hennframework.data import (
    FORMAT_CHOICES,
    check_text,
    detect_format,
    load_delimited,
    load_reviews,
)
from hennframework.data.naming import command_line_names, option, using_command_line_names
from hennframework.exceptions import DataFormatError


def write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


# The shape of the UCI "sentiment labelled sentences" files: raw text, two spaces, a tab, 0/1.
UCI = (
    "So there is no way for me to plug it in here in the US unless I go by a converter.  \t0\n"
    "Good case, Excellent value.\t1\n"
    "Great for the jawbone.\t1\n"
    'Tied to charger for conversations lasting more than 45 minutes."MAJOR PROBLEMS!!\t0\n'
)


# ---------------------------------------------------------------------------- tsv


def test_uci_style_tsv_is_detected_and_read_verbatim(tmp_path: Path) -> None:
    path = write(tmp_path / "amazon_cells_labelled.txt", UCI)
    assert detect_format(path) == "tsv"
    ds = load_reviews(path)
    assert ds.format == "tsv" and ds.encoding == "ascii"
    assert ds.reviews[0].endswith("by a converter.  ")  # text kept as written, spaces included
    assert ds.reviews[1] == "Good case, Excellent value."  # a comma in a tsv review is text
    assert ds.reviews[3].startswith("Tied to charger") and '"MAJOR' in ds.reviews[3]
    assert ds.labels.tolist() == [0, 1, 1, 0]
    assert "tab-separated" in ds.source and "4 reviews" in ds.source
    assert ds.notes == ()


def test_tsv_label_is_the_last_field_and_spellings_any_case(tmp_path: Path) -> None:
    path = write(
        tmp_path / "d.tsv",
        "a\ttab inside\tPOSITIVE\nb\tNeg\nc\t pos \nd\tnegative\r\ne\t1\nf\t0\n",
    )
    ds = load_delimited(path)
    assert ds.reviews == ["a\ttab inside", "b", "c", "d", "e", "f"]
    assert ds.labels.tolist() == [1, 0, 1, 0, 1, 0]
    assert ds.labels.dtype == np.int8


def test_tsv_header_detected_forced_and_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "h.tsv", "sentence\tlabel\ngood\t1\nbad\t0\n")
    ds = load_reviews(path)
    assert ds.reviews == ["good", "bad"]
    assert ds.notes == ("line 1 read as a header: 'sentence\\tlabel'",)
    with pytest.raises(DataFormatError, match=r"unknown label 'label' at line 1"):
        load_reviews(path, header=False)
    # header=True drops the first line even when it looks like data
    plain = write(tmp_path / "p.tsv", "good\t1\nbad\t0\nfine\t1\n")
    assert load_reviews(plain, header=True).reviews == ["bad", "fine"]
    assert load_reviews(plain).reviews == ["good", "bad", "fine"]


def test_a_first_line_with_a_bad_label_is_not_taken_for_a_header(tmp_path: Path) -> None:
    # '2' is a typo for a label, not a column name: refused, with the header option suggested
    path = write(tmp_path / "t.tsv", "good film\t2\nbad\t0\nfine\t1\n")
    with pytest.raises(DataFormatError) as info:
        load_reviews(path)
    message = str(info.value)
    assert "unknown label '2' at line 1" in message and "t.tsv" in message
    assert "positive/negative, pos/neg and 1/0" in message and "header=True" in message


def test_tsv_errors_name_file_line_and_fix(tmp_path: Path) -> None:
    path = write(tmp_path / "e.tsv", "good\t1\nbad\t0\nno tab here\nfine\t1\n")
    with pytest.raises(DataFormatError) as info:
        load_reviews(path)
    message = str(info.value)
    assert "e.tsv" in message and "line 3: no tab in 'no tab here'" in message
    assert "format='csv'" in message
    path = write(tmp_path / "l.tsv", "good\t1\nbad\t0\nfine\tneutral\n")
    with pytest.raises(DataFormatError, match=r"unknown label 'neutral' at line 3 of tab-sep"):
        load_reviews(path)


def test_blank_lines_and_empty_reviews_error_or_skip(tmp_path: Path) -> None:
    path = write(tmp_path / "b.tsv", "good\t1\n\nbad\t0\n   \n\t1\nfine\tpos\n")
    with pytest.raises(DataFormatError) as info:
        load_reviews(path)
    assert "empty review at lines 2, 4, 5" in str(info.value)
    assert "skip_empty=True" in str(info.value)
    with pytest.warns(UserWarning, match="skipped 3 empty review"):
        ds = load_reviews(path, skip_empty=True)
    assert ds.reviews == ["good", "bad", "fine"] and ds.labels.tolist() == [1, 0, 1]
    assert any("lines 2, 4, 5" in note for note in ds.notes)


def test_tsv_decoding_traps(tmp_path: Path) -> None:
    # Windows-1252 with 0x85 inside a line, CRLF endings and no final newline
    path = write(tmp_path / "w.tsv", b"so good \x85 really\t1\r\n\x93awful\x94\t0")
    ds = load_reviews(path)
    assert ds.reviews == ["so good \u2026 really", "\u201cawful\u201d"]
    assert ds.encoding == "windows-1252"
    # UTF-8 with a byte-order mark: the mark is not part of the first review
    path = write(tmp_path / "u.tsv", "\ufeffcafé crème\tpositive\nnaïve\tnegative\n")
    assert load_reviews(path).reviews == ["café crème", "naïve"]


# ---------------------------------------------------------------------------- csv


def test_csv_with_quotes_commas_doubled_quotes_and_newlines(tmp_path: Path) -> None:
    path = write(
        tmp_path / "r.csv",
        'review,sentiment\n"Good, really good",positive\n'
        '"He said ""meh"", then left",negative\n'
        '"two\nlines",pos\n'
        "unquoted, commas, kept,neg\n",
    )
    assert detect_format(path) == "csv"
    ds = load_reviews(path)
    assert ds.format == "csv"
    assert ds.reviews == [
        "Good, really good",
        'He said "meh", then left',
        "two\nlines",
        "unquoted, commas, kept",
    ]
    assert ds.labels.tolist() == [1, 0, 1, 0]
    assert ds.notes[0].startswith("line 1 read as a header")


def test_csv_unclosed_quote_says_where_the_record_started(tmp_path: Path) -> None:
    path = write(tmp_path / "q.csv", 'good,1\nbad,0\n"runaway,1\nnext,0\nlast,1\n')
    with pytest.raises(DataFormatError) as info:
        load_reviews(path, format="csv")
    message = str(info.value)
    assert "line 3: no comma" in message and "runs from line 3 to line 5" in message
    assert "double quote" in message
    # the same with a label-like end: the swallowed lines end in a field that is not a label
    path = write(tmp_path / "r.csv", 'good,1\n"runaway, 1\nnext,0\nlast",maybe\n')
    with pytest.raises(DataFormatError, match=r"unknown label 'maybe' at line 2.*line 2 to line 4"):
        load_reviews(path, format="csv")


def test_forcing_the_wrong_separator_suggests_the_other(tmp_path: Path) -> None:
    path = write(tmp_path / "x.txt", "good\t1\nbad\t0\n")
    with pytest.raises(DataFormatError, match=r"line 1: no comma.*format='tsv'"):
        load_reviews(path, format="csv")
    assert load_reviews(path, format="tsv").labels.tolist() == [1, 0]


def test_tab_wins_when_reviews_hold_commas(tmp_path: Path) -> None:
    path = write(tmp_path / "m.txt", "good, fine\t1\nbad, awful\t0\nok, ok\t1\n")
    assert detect_format(path) == "tsv"
    assert load_reviews(path).reviews == ["good, fine", "bad, awful", "ok, ok"]


def test_header_only_and_undetectable_files(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match="holds no reviews"):
        load_reviews(write(tmp_path / "h.csv", "text,label\n"), format="csv")
    prose = write(tmp_path / "notes.txt", "just some text\nwith no labels\nat all\n")
    with pytest.raises(DataFormatError, match="cannot tell the dataset format of file"):
        load_reviews(prose)
    with pytest.raises(DataFormatError, match=r"cannot tell whether .* tab- or comma-separated"):
        load_delimited(prose)


@pytest.mark.parametrize("choice", [c for c in FORMAT_CHOICES if c != "auto"])
def test_every_format_choice_loads(tmp_path: Path, choice: str) -> None:
    """What --format offers (and so its help lists) all work."""
    if choice == "tsv":
        path: object = write(tmp_path / "d.tsv", "good\t1\nbad\t0\n")
    elif choice == "csv":
        path = write(tmp_path / "d.csv", "good,1\nbad,0\n")
    elif choice == "pair":
        write(tmp_path / "reviews.txt", "good\nbad\n")
        write(tmp_path / "labels.txt", "positive\nnegative\n")
        path = tmp_path
    elif choice == "polarity":
        write(tmp_path / "x.pos", "good\n")
        path = write(tmp_path / "x.neg", "bad\n")
    else:
        write(tmp_path / "imdb" / "train" / "pos" / "1.txt", "good")
        write(tmp_path / "imdb" / "train" / "neg" / "1.txt", "bad")
        path = tmp_path / "imdb"
    ds = load_reviews(path, format=choice)  # type: ignore[arg-type]
    assert sorted(zip(ds.reviews, ds.labels.tolist(), strict=True)) == [("bad", 0), ("good", 1)]


# ---------------------------------------------------------------------------- not text


def test_binary_files_are_not_text(tmp_path: Path) -> None:
    blob = bytes(range(256)) * 8
    binary = write(tmp_path / "binary.bin", blob)
    for call in (lambda: load_reviews(binary), lambda: load_delimited(binary)):
        with pytest.raises(DataFormatError, match=r"binary\.bin' is not a text file") as info:
            call()
        assert "byte 0x00 at line 1, offset 0" in str(info.value)


def test_binary_reviews_and_labels_with_matching_line_counts(tmp_path: Path) -> None:
    # two lines each, so the old line-count check passed and training failed much later
    write(tmp_path / "reviews.txt", b"\x00\x01\x02\xff\n\x03\x04\x05\xfe\n")
    write(tmp_path / "labels.txt", "positive\nnegative\n")
    with pytest.raises(DataFormatError, match=r"reviews file .*reviews\.txt' is not a text file"):
        load_reviews(tmp_path)
    write(tmp_path / "reviews.txt", "good\nbad\n")
    write(tmp_path / "labels.txt", b"\x89PNG\r\n\x1a\n\x00\x00")
    with pytest.raises(DataFormatError, match=r"labels file .* is not a text file"):
        load_reviews(tmp_path)


def test_control_bytes_without_nul_are_refused_unless_an_encoding_is_given(
    tmp_path: Path,
) -> None:
    data = b"".join(bytes([1 + i % 8]) + b"x\t1\n" for i in range(50))
    path = write(tmp_path / "c.tsv", data)
    with pytest.raises(DataFormatError, match="is not a text file"):
        load_reviews(path)
    assert len(load_reviews(path, encoding="latin-1")) == 50
    # one stray control byte in ordinary text is still text
    one = write(tmp_path / "one.tsv", "fine \x07 film\t1\n" + "good film\t1\n" * 200)
    assert len(load_reviews(one)) == 201


def test_utf16_is_not_text_by_default_but_reads_with_its_encoding(tmp_path: Path) -> None:
    path = write(tmp_path / "u16.tsv", "good\t1\nbad\t0\n".encode("utf-16"))
    with pytest.raises(DataFormatError, match=r"UTF-16 byte-order mark.*encoding='utf-16'"):
        load_reviews(path)
    ds = load_reviews(path, encoding="utf-16")
    assert ds.reviews == ["good", "bad"] and ds.encoding == "utf-16"


def test_check_text_accepts_ordinary_text() -> None:
    check_text("café\tcrème\r\n\x0c\x1b[0m".encode())
    check_text(b"")
    with pytest.raises(DataFormatError, match="byte 0x00 at line 2, offset 2"):
        check_text(b"a\n\x00", source="x")


# ---------------------------------------------------------------------------- option names


def test_errors_name_python_arguments_or_command_line_options(tmp_path: Path) -> None:
    path = write(tmp_path / "b.tsv", "good\t1\n\nbad\t0\n")
    with pytest.raises(DataFormatError) as python_side:
        load_reviews(path)
    with command_line_names(), pytest.raises(DataFormatError) as cli_side:
        load_reviews(path)
    assert "skip_empty=True" in str(python_side.value)
    assert "--skip-empty" in str(cli_side.value) and "skip_empty" not in str(cli_side.value)
    wrong = write(tmp_path / "w.txt", "good\t1\nbad\t0\n")
    with command_line_names(), pytest.raises(DataFormatError, match="pass --format tsv"):
        load_reviews(wrong, format="csv")
    with command_line_names(), pytest.raises(DataFormatError, match="--format auto, tsv"):
        load_reviews(wrong, format="xml")


def test_command_line_names_is_scoped() -> None:
    assert not using_command_line_names()
    with command_line_names():
        assert option("a=1", "--a") == "--a"
        with command_line_names():
            assert using_command_line_names()
        assert using_command_line_names()
    assert option("a=1", "--a") == "a=1"
    with pytest.raises(RuntimeError), command_line_names():
        raise RuntimeError
    assert not using_command_line_names()


def test_clean_delimited_input_gives_no_warnings(tmp_path: Path) -> None:
    path = write(tmp_path / "ok.tsv", "good\t1\nbad\t0\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_reviews(path)
