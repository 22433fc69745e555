"""The unencrypted baseline network: the update rule of Trask's 2017 post, mini-batches, evaluation, errors."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hennframework.data import EncodedReviews, PlainSentimentNetwork, TrainProgress
from hennframework.data.baseline import main
from hennframework.exceptions import InputError


def random_data(rng: np.random.Generator, n: int, vocab: int, max_len: int = 6) -> EncodedReviews:
    parts = [
        np.sort(rng.choice(vocab, size=rng.integers(0, max_len + 1), replace=False))
        for _ in range(n)
    ]
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum([len(p) for p in parts], out=offsets[1:])
    indices = np.concatenate(parts).astype(np.int32) if n else np.zeros(0, np.int32)
    return EncodedReviews(indices, offsets, rng.integers(0, 2, n).astype(np.int8), vocab)


def course_train(
    w1: np.ndarray, w2: np.ndarray, data: EncodedReviews, lr: float
) -> tuple[np.ndarray, np.ndarray, int]:
    """The course's project-5/6 training loop, literally (layer_1 is 1 x hidden, W2 hidden x 1)."""
    weights_0_1 = w1.copy()
    weights_1_2 = w2.reshape(-1, 1).copy()
    layer_1 = np.zeros((1, w1.shape[1]))
    correct = 0
    for i in range(len(data)):
        review, label = data[i].tolist(), int(data.labels[i])
        layer_1 *= 0
        for index in review:
            layer_1 += weights_0_1[index]
        layer_2 = 1 / (1 + np.exp(-layer_1.dot(weights_1_2)))
        layer_2_error = layer_2 - label
        layer_2_delta = layer_2_error * (layer_2 * (1 - layer_2))
        layer_1_error = layer_2_delta.dot(weights_1_2.T)
        layer_1_delta = layer_1_error
        weights_1_2 -= layer_1.T.dot(layer_2_delta) * lr
        for index in review:
            weights_0_1[index] -= layer_1_delta[0] * lr
        if (layer_2 >= 0.5 and label == 1) or (layer_2 < 0.5 and label == 0):
            correct += 1
    return weights_0_1, weights_1_2.ravel(), correct


def batch_reference(
    net: PlainSentimentNetwork, data: EncodedReviews, lr: float, batch: int, mean: bool
) -> None:
    """Mini-batch: every review of a batch at the same weights, per-review updates summed/averaged."""
    for lo in range(0, len(data), batch):
        hi = min(len(data), lo + batch)
        dw1 = np.zeros_like(net.w1)
        dw2 = np.zeros_like(net.w2)
        for i in range(lo, hi):
            idx = data[i]
            h = net.w1[idx].sum(axis=0)
            out = 1 / (1 + np.exp(-h @ net.w2))
            delta = (out - data.labels[i]) * out * (1 - out)
            dw2 += h * delta
            dw1[idx] += delta * net.w2
        scale = lr / (hi - lo) if mean else lr
        net.w1 -= scale * dw1
        net.w2 -= scale * dw2


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(0, 40), st.sampled_from([1, 3, 8]))
def test_sgd_matches_the_course_loop(seed: int, n: int, hidden: int) -> None:
    rng = np.random.default_rng(seed)
    data = random_data(rng, n, 12)
    net = PlainSentimentNetwork(12, hidden, rng=seed)
    net.w1 = rng.normal(0, 0.5, net.w1.shape)  # non-zero start so every term matters
    w1, w2, correct = course_train(net.w1, net.w2, data, 0.3)
    report = net.train(data, 1, 0.3)
    np.testing.assert_allclose(net.w1, w1, rtol=0, atol=1e-12)
    np.testing.assert_allclose(net.w2, w2, rtol=0, atol=1e-12)
    assert report.epoch_train_accuracy == ((correct / n) if n else 0.0,)


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 40), st.sampled_from([2, 5, 64]), st.booleans())
def test_minibatch_matches_reference(seed: int, n: int, batch: int, mean: bool) -> None:
    rng = np.random.default_rng(seed)
    data = random_data(rng, n, 9)
    a = PlainSentimentNetwork(9, 4, rng=seed)
    a.w1 = rng.normal(0, 0.5, a.w1.shape)
    b = PlainSentimentNetwork(9, 4, rng=seed)
    b.w1 = a.w1.copy()
    a.train(data, 2, 0.2, batch_size=batch, reduction="mean" if mean else "sum")
    batch_reference(b, data, 0.2, batch, mean)
    batch_reference(b, data, 0.2, batch, mean)
    np.testing.assert_allclose(a.w1, b.w1, rtol=0, atol=1e-12)
    np.testing.assert_allclose(a.w2, b.w2, rtol=0, atol=1e-12)


def test_batch_size_one_equals_sgd_and_evaluation_is_consistent() -> None:
    rng = np.random.default_rng(5)
    data = random_data(rng, 50, 20)
    sgd = PlainSentimentNetwork(20, rng=2)
    big = PlainSentimentNetwork(20, rng=2)
    sgd.train(data, 2, 0.1)
    big.train(data, 2, 0.1, batch_size=len(data) + 3)  # one batch bigger than the data
    assert not np.allclose(sgd.w1, big.w1)
    proba = sgd.predict_proba(data)
    expected = [1 / (1 + np.exp(-(sgd.w1[data[i]].sum(axis=0) @ sgd.w2))) for i in range(len(data))]
    np.testing.assert_allclose(proba, expected, rtol=1e-12)
    report = sgd.evaluate(data)
    assert report.correct == int(np.sum((np.array(expected) >= 0.5) == data.labels))
    assert report.total == 50 and 0 <= report.accuracy <= 1


def test_init_and_empty_reviews() -> None:
    net = PlainSentimentNetwork(4, 8, rng=np.random.default_rng(0), init_std=0.5)
    assert not net.w1.any() and net.w2.shape == (8,)
    assert np.array_equal(PlainSentimentNetwork(4, rng=3).w2, PlainSentimentNetwork(4, rng=3).w2)
    empty = EncodedReviews(
        np.zeros(0, np.int32), np.zeros(3, np.int64), np.array([1, 0], np.int8), 4
    )
    assert net.predict_proba(empty).tolist() == [
        0.5,
        0.5,
    ]  # no words: sigmoid(0), predicted positive
    net.train(empty, 1, 0.1, batch_size=2)
    net.train(empty, 1, 0.1)
    assert not net.w1.any()


def test_sigmoid_saturates_without_warnings() -> None:
    net = PlainSentimentNetwork(2, 1, rng=0)
    net.w2[:] = 1.0
    net.w1[:] = [[1000.0], [-1000.0]]
    data = EncodedReviews(
        np.array([0, 1], np.int32), np.array([0, 1, 2], np.int64), np.array([1, 0], np.int8), 2
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert net.predict(data).tolist() == [1, 0]
        net.train(data, 1, 0.1)
        net.train(data, 1, 0.1, batch_size=2)


def test_progress_reports() -> None:
    data = random_data(np.random.default_rng(1), 25, 10)
    seen: list[TrainProgress] = []
    report = PlainSentimentNetwork(10, rng=0).train(
        data, 2, 0.1, batch_size=4, progress=seen.append, progress_every=10
    )
    per_epoch = [p.seen for p in seen if p.epoch == 1]
    assert per_epoch == [12, 24, 25]  # rounded up to whole batches, and the epoch end
    assert seen[-1].epoch == 2 and seen[-1].fraction == 1.0
    assert "reviews/s" in seen[-1].format() and 0 <= seen[-1].running_accuracy <= 1
    assert report.epochs == 2 and report.reviews == 25 and report.reviews_per_second > 0
    assert len(report.epoch_train_accuracy) == 2


def test_errors() -> None:
    net = PlainSentimentNetwork(5, rng=0)
    other = random_data(np.random.default_rng(0), 3, 6)
    with pytest.raises(InputError, match="vocabulary of 6 words"):
        net.train(other)
    data = random_data(np.random.default_rng(0), 3, 5)
    for kwargs in ({"epochs": 0}, {"batch_size": 0}, {"progress_every": 0}):
        with pytest.raises(InputError, match=">= 1"):
            net.train(data, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="reduction"):
        net.train(data, reduction="max")  # type: ignore[arg-type]
    unlabelled = EncodedReviews(data.indices, data.offsets, np.full(3, -1, np.int8), 5)
    with pytest.raises(InputError, match="labelled"):
        net.train(unlabelled)
    with pytest.raises(InputError, match="labelled"):
        net.evaluate(unlabelled)
    with pytest.raises(InputError, match="lower them"):
        PlainSentimentNetwork(0)


def test_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = tmp_path / "rt"
    d.mkdir()
    pos = [f"great fun w{i % 5} " for i in range(40)]
    neg = [f"dull bad w{i % 5} " for i in range(40)]
    (d / "rt-polarity.pos").write_text("\n".join(pos) + "\n")
    (d / "rt-polarity.neg").write_text("\n".join(neg) + "\n")
    args = [str(d), "--n-test", "20", "--min-count", "1", "--polarity-cutoff", "0", "--epochs", "2"]
    assert main([*args, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["train_reviews"] == 60 and result["test_reviews"] == 20
    assert len(result["epoch_test_accuracy"]) == 2 and result["test_accuracy"] == 1.0
    assert main([*args, "--batch-size", "4"]) == 0
    captured = capsys.readouterr()
    assert "test accuracy per epoch" in captured.out and "reviews/s" in captured.err
    assert main([str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert (
        main([str(d), "--n-test", "20", "--min-count", "1000"]) == 2
    )  # every word pruned: a clear error, no traceback
    assert "lower them" in capsys.readouterr().err
