"""``henn demo sentiment --scheme ckks`` at full scale: every shipped review, the defaults.

The secure path users run first. Smaller runs (the other tests) miss what only the full
vocabulary and batches reach: a trained network's output weights with all 11 low slot bits
pinned, whose replication once ended the held-out evaluation with an internal MemoryError after
a full epoch of training. About a minute on a 2-core machine.
"""

from __future__ import annotations

import pytest
from hennframework.demos.sentiment import SentimentSettings, run_sentiment

pytestmark = pytest.mark.slow


def test_the_full_demo_trains_and_evaluates_within_a_point_of_plaintext() -> None:
    summary = run_sentiment(SentimentSettings(scheme="ckks", compare=True), show_progress=False)
    assert summary["parameter_set"] == "n16384-9"
    assert "evaluation_error" not in summary
    assert summary["train_reviews"] == 9_662 and summary["test_reviews"] == 1_000
    encrypted, plain = summary["encrypted_test_accuracy"], summary["plain_test_accuracy"]
    assert encrypted > 0.65
    assert abs(encrypted - plain) <= 0.01
