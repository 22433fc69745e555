"""Movie-review data for the sentiment work: loading, decoding, preprocessing, plaintext baseline.

* :mod:`hennframework.data.loaders` - read reviews + labels files, the rt-polarity ``.pos``/``.neg``
  pair or an aclImdb folder (:func:`load_reviews` detects which), decoding UTF-8 or Windows-1252;
  :func:`interleave` and :func:`train_test_split_last` give the evaluation protocol.
* :mod:`hennframework.data.text` - the seed's vocabulary rules (min_count, polarity_cutoff) and
  the CSR index-set encoding the networks train on.
* :mod:`hennframework.data.baseline` - the seed's network trained unencrypted in NumPy, the
  accuracy and speed reference for the encrypted one.
"""

from __future__ import annotations

from hennframework.data.baseline import (
    BaselineResult,
    EvalReport,
    PlainSentimentNetwork,
    TrainProgress,
    TrainReport,
    run_baseline,
)
from hennframework.data.loaders import (
    ACCEPTED_LABELS,
    FORMATS,
    DatasetFormat,
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
from hennframework.data.text import (
    EncodedReviews,
    Vocabulary,
    WordCounts,
    build_vocabulary,
    count_words,
    polarity_scores,
    split_on_spaces,
)

__all__ = [
    "ACCEPTED_LABELS",
    "FORMATS",
    "BaselineResult",
    "DatasetFormat",
    "EncodedReviews",
    "EvalReport",
    "PlainSentimentNetwork",
    "ReviewDataset",
    "TrainProgress",
    "TrainReport",
    "Vocabulary",
    "WordCounts",
    "build_vocabulary",
    "count_words",
    "decode_bytes",
    "detect_format",
    "interleave",
    "load_aclimdb",
    "load_polarity",
    "load_reviews",
    "load_reviews_and_labels",
    "parse_label",
    "polarity_scores",
    "run_baseline",
    "split_lines",
    "split_on_spaces",
    "train_test_split_last",
]
