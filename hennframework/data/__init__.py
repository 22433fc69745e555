"""Movie-review data for the sentiment work: loading, decoding, preprocessing.

* :mod:`hennframework.data.loaders` - read a ``text<TAB>label`` or ``text,label`` file, reviews +
  labels files, the rt-polarity ``.pos``/``.neg`` pair or an aclImdb folder (:func:`load_reviews`
  detects which), decoding UTF-8 or Windows-1252 and refusing files that are not text;
  :func:`interleave` and :func:`train_test_split_last` give the evaluation protocol.
* :mod:`hennframework.data.bundled` - the sentence polarity dataset v1.0 (Pang and Lee, ACL
  2005), shipped in the package: :func:`load_rt_polarity`.
* :mod:`hennframework.data.text` - tokenizers (Andrew Trask's 2017 ``whitespace`` rules, a
  Unicode ``words`` tokenizer), the vocabulary rules (min_count, polarity_cutoff) and the CSR
  index-set encoding the networks train on.
* :mod:`hennframework.data.naming` - data errors name Python arguments or ``henn`` options.
"""

from __future__ import annotations

from hennframework.data.bundled import RT_POLARITY_CITATION, load_rt_polarity
from hennframework.data.loaders import (
    ACCEPTED_LABELS,
    FORMAT_CHOICES,
    FORMATS,
    DatasetFormat,
    ReviewDataset,
    check_text,
    decode_bytes,
    detect_format,
    interleave,
    load_aclimdb,
    load_delimited,
    load_polarity,
    load_reviews,
    load_reviews_and_labels,
    parse_data_spec,
    parse_label,
    parse_test_size,
    resolve_test_size,
    split_lines,
    train_test_split_last,
)
from hennframework.data.text import (
    TOKENIZERS,
    EncodedReviews,
    TextTokenizer,
    Vocabulary,
    WordCounts,
    build_vocabulary,
    count_words,
    make_tokenizer,
    polarity_scores,
    split_on_spaces,
    split_words,
)

__all__ = [
    "ACCEPTED_LABELS",
    "FORMATS",
    "FORMAT_CHOICES",
    "RT_POLARITY_CITATION",
    "TOKENIZERS",
    "DatasetFormat",
    "EncodedReviews",
    "ReviewDataset",
    "TextTokenizer",
    "Vocabulary",
    "WordCounts",
    "build_vocabulary",
    "check_text",
    "count_words",
    "decode_bytes",
    "detect_format",
    "interleave",
    "load_aclimdb",
    "load_delimited",
    "load_polarity",
    "load_reviews",
    "load_reviews_and_labels",
    "load_rt_polarity",
    "make_tokenizer",
    "parse_data_spec",
    "parse_label",
    "parse_test_size",
    "polarity_scores",
    "resolve_test_size",
    "split_lines",
    "split_on_spaces",
    "split_words",
    "train_test_split_last",
]
