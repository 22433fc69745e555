"""The secure path: the CKKS plugin at 128-bit security on four targets, next to TenSEAL by hand.

Everything here runs at 128-bit classical security by the HomomorphicEncryption.org standard
(Albrecht et al. 2018, Table 1, ternary secret), and every record says which CKKS parameter set,
ring dimension N and total coefficient-modulus bits it used. Ours goes through the public API only
(``hennframework.get_scheme("ckks")``, :class:`~hennframework.nn.Sequential` and its ``fit``,
the demos' data preparation, the owner workflow's key generation), so it measures whatever the
plugin does when the bench runs. The TenSEAL references are written directly on
``tenseal.ckks_vector``, as a TenSEAL user would write them. Each ratio is measured in this run,
interleaved: before each of our timed rounds, the reference runs once (pytest-benchmark's
``setup``, outside our timing), so load changes hit both sides alike.

1. XOR training iteration (3-4-1 network, full batch of 4, learning rate 0.5, owner refreshes
   included), against one TenSEAL ciphertext product (multiply + relinearise + rescale) at
   N = 16384, coefficient moduli [60, 40, 40, 40, 40, 60], scale 2**40 (the target), and against
   the same iteration written by hand on TenSEAL (:class:`HandWrittenTenSEALXor`, our ring and
   moduli). Whether XOR is *learned* (300 iterations per seed) is not run here:
   ``plugins/ckks-tenseal/benchmarks/xor_seeds.py`` measures it; the bench checks that the timed
   encrypted iterations match plaintext training.
2. Sentiment on rt-polarity (vocabulary from the full training split, batches of 256): reviews/s
   over one epoch of the whole training set, owner refreshes included, then the held-out accuracy
   of that encrypted model against the same network trained unencrypted on the same batches; and
   the same network's per-review SGD written by hand on TenSEAL
   (:class:`HandWrittenTenSEALSentiment`, our ring and moduli), timed before our epoch.
3. Logistic regression on breast_cancer (plain data, encrypted weights): ours, training in
   mini-batches packed into the slots, against :class:`HandWrittenTenSEAL` (per-sample SGD, as a
   TenSEAL user writes it) at the same ring and moduli, samples per second; ours at batch 1 is
   timed in the same rounds, and the held-out accuracy of both kinds of SGD is recorded.
4. The public key files (public key + relinearisation + rotation keys) the owner workflow writes
   for the XOR and sentiment models (what ``henn keygen --scheme ckks --for ...`` writes), next to
   the public material of a TenSEAL context at the same ring and moduli.

All cases have ``secure`` in their names: ``pytest benchmarks -k secure`` runs this part alone.
Skipped, with the reason, without TenSEAL or the CKKS plugin (``pip install -e plugins/ckks-tenseal``).
"""

from __future__ import annotations

import copy
import importlib.util
import time
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from benchutil import ReferenceTimer, measure

from hennframework.nn import word_model_defaults

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("tenseal") is None
    or importlib.util.find_spec("hennframework_ckks") is None,
    reason="the secure path needs TenSEAL and the CKKS plugin "
    '(pip install "hennframework[ckks]" and pip install -e plugins/ckks-tenseal)',
)

#: TenSEAL's product of target 1: the ring and moduli the target names.
PRODUCT_RING = 16384
PRODUCT_MODULI = (60, 40, 40, 40, 40, 60)
PRODUCT_SCALE_BITS = 40
#: XOR: iterations per timed call, timed calls, learning rate (the XOR demo's CKKS default).
XOR_STEPS = 1
XOR_ROUNDS = 4
XOR_RATE = 0.5
#: XOR by hand on TenSEAL: iterations per timed call (one call before each of our rounds).
XOR_BY_HAND_STEPS = 1
#: Sentiment by hand on TenSEAL: reviews per timed call (about 9 s each at N = 16384), calls.
SENTIMENT_BY_HAND_REVIEWS = 1
SENTIMENT_BY_HAND_CALLS = 2
#: Sentiment: batch size and learning rate, the CKKS defaults of ``henn demo sentiment`` (256 and
#: 0.05: one epoch gives the accuracy of batches of 32 at rate 0.1, at about twice the reviews/s
#: of batch 32 encrypted). The timed call is one whole epoch.
SENTIMENT_BATCH, SENTIMENT_RATE = word_model_defaults("ckks")
#: Logistic regression: the parameter set of both sides (n8192: N = 8192, 5 levels, 128-bit; one
#: SGD step of either side fits in its levels); per-sample SGD (TenSEAL by hand, and ours at
#: batch 1): samples per timed call and learning rate; ours in mini-batches: batch size (one batch
#: per timed call) and learning rate (one epoch of either gives the same held-out accuracy);
#: timed calls.
LR_PARAMS = "n8192"
LR_SAMPLES = 4
LR_RATE = 0.05
LR_BATCH = 16
LR_BATCH_RATE = 0.4
LR_ROUNDS = 3
LR_SIGMOID = "lsq3"


# ---------------------------------------------------------------------------------- security
def security(ring: int, moduli: tuple[int, ...], scale_bits: int, name: str) -> dict[str, Any]:
    """What a record says about its security: 128-bit only if the HE Standard's bound holds."""
    from hennframework_ckks.params import HE_STANDARD_MAX_BITS_128

    total, limit = sum(moduli), HE_STANDARD_MAX_BITS_128[ring]
    assert total <= limit, f"{name}: {total} bits exceed the {limit} that 128-bit allows"
    return {
        "params": name,
        "ring": ring,
        "moduli": list(moduli),
        "scale_bits": scale_bits,
        "modulus_bits": total,
        "max_modulus_bits": limit,
        "security": "128-bit",
    }


def scheme_security(scheme: Any) -> dict[str, Any]:
    """The security record of our CKKS scheme's parameter set."""
    p = scheme.params
    return security(p.poly_modulus_degree, tuple(p.coeff_bits), p.scale_bits, p.name)


def tenseal_context(ring: int, moduli: tuple[int, ...], scale_bits: int, rotations: bool) -> Any:
    """A TenSEAL CKKS context with relinearisation (and, if asked, all rotation) keys."""
    import tenseal as ts

    context = ts.context(ts.SCHEME_TYPE.CKKS, ring, coeff_mod_bit_sizes=list(moduli))
    context.global_scale = 2.0**scale_bits
    context.generate_relin_keys()
    if rotations:
        context.generate_galois_keys()
    return context


class ByHandOnTenSEAL:
    """What each reference written by hand on TenSEAL holds: the context, the sigmoid polynomial
    and its slope as coefficient lists (lowest first, as ``polyval`` takes them) and the learning
    rate; with encryption and the owner's refresh of one vector (decrypt, encrypt again)."""

    def __init__(self, context: Any, sigmoid: Any, learning_rate: float) -> None:
        import tenseal as ts

        self.ts, self.context = ts, context
        self.sigmoid = list(sigmoid.coefficients)
        self.slope = list(sigmoid.derivative_coefficients)
        self.learning_rate = learning_rate

    def encrypt(self, values: Any) -> Any:
        return self.ts.ckks_vector(self.context, [float(v) for v in values])

    def refresh(self, vector: Any) -> Any:
        return self.encrypt(vector.decrypt())


def largest_difference(decrypted: Any, expected: Any) -> float:
    """The largest difference between a hand-written reference's decrypted weights and the
    same training's in plaintext, weight matrix by weight matrix."""
    return max(
        float(np.abs(got - np.asarray(want, dtype=np.float64)).max())
        for got, want in zip(decrypted, expected, strict=True)
    )


# ---------------------------------------------------------------------------------- fixtures
class Ckks:
    """Our CKKS scheme (a parameter set; None: its default) and one key set for the cases."""

    def __init__(self, params: str | None = None) -> None:
        import hennframework

        self.scheme = hennframework.get_scheme("ckks", params=params)
        self.keys = self.scheme.keygen()
        self.security = scheme_security(self.scheme)

    def refresher(self) -> Any:
        from hennframework.nn import OwnerRefresher

        return OwnerRefresher(self.scheme, self.keys)

    def decrypt(self, tensor: Any) -> np.ndarray:
        return np.asarray(self.scheme.decrypt_tensor(tensor, self.keys.secret), dtype=np.float64)


@pytest.fixture(scope="module")
def ckks() -> Ckks:
    return Ckks()


@pytest.fixture(scope="module")
def ckks_lr() -> Ckks:
    """The logistic regression's set: the smallest whose levels hold one SGD step."""
    return Ckks(LR_PARAMS)


@cache
def sentiment_data(batch_size: int) -> Any:
    """rt-polarity (bundled) split as the sentiment demo does, vocabulary from the training part."""
    from hennframework.demos.sentiment import SentimentSettings, prepare

    return prepare(SentimentSettings(batch_size=batch_size))


def _record(target: str, operation: str, **extra: Any) -> dict[str, Any]:
    return {
        "kind": "secure",
        "target": target,
        "operation": operation,
        "implementation": "hennframework",
        "encrypted": True,
        "backend": "",
        **extra,
    }


# ------------------------------------------------------------------------ 1. XOR iteration
def _fresh(vector: Any) -> Any:
    """A new handle on an encrypted vector. TenSEAL lowers an operand's level in place when it
    meets a lower one (auto mod switch), so weights used twice are used through new handles;
    ``copy()`` would also copy the context with its keys (seconds at N = 16384)."""
    return vector + 0.0


class HandWrittenTenSEALXor(ByHandOnTenSEAL):
    """The XOR network (3-4-1, cubic sigmoid, squared error, full batch) with encrypted weights,
    written on TenSEAL's ``ckks_vector`` directly, as a TenSEAL user writes it.

    The first layer's weights as one vector per input (its row of 4 hidden units), the output
    weights as one vector of 4. For each of the batch's rows: the hidden pre-activations as the
    sum of the rows times the input's values (plain scalars; zeros skipped, since TenSEAL refuses
    a product with zero), the sigmoid polynomial, the output as a dot product, its slope and the
    error; the error broadcast to the 4 hidden units with ``matmul`` (the learning rate in the
    matrix); the gradients summed over the batch and applied once. Then the owner refreshes the
    weights (decrypt and encrypt again). The same update as ``Sequential.mlp([3, 4, 1])``'s
    ``fit`` on the whole batch, so both sides do the same arithmetic.
    """

    def __init__(
        self,
        context: Any,
        first: np.ndarray,
        second: np.ndarray,
        sigmoid: Any,
        learning_rate: float,
    ) -> None:
        super().__init__(context, sigmoid, learning_rate)
        self.hidden = first.shape[1]
        self.rows = [self.encrypt(row) for row in first]
        self.output = self.encrypt(second[:, 0])

    def step(self, inputs: np.ndarray, targets: np.ndarray) -> None:
        row_gradients: list[Any] = [None] * len(self.rows)
        output_gradient: Any = None
        for x, y in zip(inputs, targets, strict=True):
            terms = [row * float(v) for row, v in zip(self.rows, x, strict=True) if v != 0]
            z1 = terms[0]
            for term in terms[1:]:
                z1 = z1 + term
            h = z1.polyval(self.sigmoid)
            z2 = h.dot(_fresh(self.output))
            delta = (z2.polyval(self.sigmoid) - float(y[0])) * z2.polyval(self.slope)
            wide = delta.matmul([[self.learning_rate] * self.hidden])  # rate * delta, 4 slots
            gradient = h * wide
            output_gradient = gradient if output_gradient is None else output_gradient + gradient
            dz1 = wide * _fresh(self.output) * z1.polyval(self.slope)
            for i, v in enumerate(x):
                if v != 0:
                    gradient = dz1 * float(v)
                    previous = row_gradients[i]
                    row_gradients[i] = gradient if previous is None else previous + gradient
        self.output = self.output - output_gradient
        self.rows = [
            row if gradient is None else row - gradient
            for row, gradient in zip(self.rows, row_gradients, strict=True)
        ]
        self.output = self.refresh(self.output)  # the owner refreshes the weights
        self.rows = [self.refresh(row) for row in self.rows]

    def weights(self) -> list[np.ndarray]:
        first = np.array([row.decrypt() for row in self.rows], dtype=np.float64)
        return [first, np.asarray(self.output.decrypt(), dtype=np.float64)[:, None]]


def test_secure_xor_iteration(benchmark: Any, ckks: Ckks) -> None:
    """XOR training iterations (refreshes included) interleaved with TenSEAL products."""
    import tenseal as ts

    from hennframework.data.bundled import XOR_INPUTS, XOR_TARGETS
    from hennframework.nn import Sequential
    from hennframework.nn.activations import get_sigmoid

    context = tenseal_context(PRODUCT_RING, PRODUCT_MODULI, PRODUCT_SCALE_BITS, rotations=False)
    rng = np.random.default_rng(3)  # workload data only
    a = ts.ckks_vector(context, rng.uniform(-1, 1, 8192).tolist())
    b = ts.ckks_vector(context, rng.uniform(-1, 1, 8192).tolist())
    product = ReferenceTimer(lambda: a * b, calls=3)  # TenSEAL relinearises and rescales
    plain = Sequential.mlp([3, 4, 1], activation="taylor3", seed=0, init_scale=4.0)
    initial = copy.deepcopy(plain)
    model = copy.deepcopy(plain).encrypt(ckks.keys, ckks.scheme)
    refresher = ckks.refresher()
    # the same iteration by hand on TenSEAL, at our ring and moduli (a step is 11 levels deep)
    p = ckks.scheme.params
    moduli = tuple(p.coeff_bits)
    hand_context = tenseal_context(p.poly_modulus_degree, moduli, p.scale_bits, rotations=True)
    w0, w1 = (np.asarray(w, dtype=np.float64) for w in plain.weights())
    hand = HandWrittenTenSEALXor(hand_context, w0, w1, get_sigmoid("taylor3"), XOR_RATE)

    def hand_iterations() -> None:
        for _ in range(XOR_BY_HAND_STEPS):
            hand.step(XOR_INPUTS, XOR_TARGETS)

    by_hand = ReferenceTimer(hand_iterations)

    def both_references() -> tuple[tuple[Any, ...], dict[str, Any]]:
        product.setup()
        return by_hand.setup()

    def iterations() -> None:
        model.fit(
            XOR_INPUTS, XOR_TARGETS, epochs=XOR_STEPS, learning_rate=XOR_RATE, refresh=refresher
        )

    benchmark.group = "secure path"
    measure(
        benchmark,
        iterations,
        items=XOR_STEPS,
        unit="iteration",
        rounds=XOR_ROUNDS,
        setup=both_references,
        **_record("xor", "XOR training iteration", **ckks.security),
        learning_rate=XOR_RATE,
        learned_seeds="not run by the bench (300 iterations per seed): "
        "plugins/ckks-tenseal/benchmarks/xor_seeds.py",
    )
    steps = model.history.steps
    plain.fit(XOR_INPUTS, XOR_TARGETS, epochs=steps, learning_rate=XOR_RATE)
    model.refresh(refresher)  # the last step leaves few levels: fresh weights to predict
    error = np.abs(
        ckks.decrypt(model.predict(XOR_INPUTS)).ravel() - plain.predict(XOR_INPUTS).ravel()
    )
    assert error.max() < 1e-2, f"encrypted XOR drifted from plaintext training by {error.max()}"
    hand_steps = len(by_hand.samples) * XOR_BY_HAND_STEPS
    initial.fit(XOR_INPUTS, XOR_TARGETS, epochs=hand_steps, learning_rate=XOR_RATE)
    hand_error = largest_difference(hand.weights(), initial.weights())
    # TenSEAL sets a rescaled ciphertext's scale to exactly 2**28, but the 28-bit primes it
    # divides by are up to 1.4 % below that (ours tracks the exact scale): its values drift by
    # a few 1e-2 over a few iterations, a loss of precision the record states, not a bug
    assert hand_error < 0.1, f"TenSEAL by hand drifted from plaintext training by {hand_error}"
    benchmark.extra_info.update(
        hand_written=by_hand.describe(
            implementation="tenseal",
            operation="the same XOR training iteration written by hand on ckks_vector "
            "(HandWrittenTenSEALXor), owner refresh every iteration",
            items=XOR_BY_HAND_STEPS,
            steps_checked=hand_steps,
            max_abs_error=hand_error,
            **security(p.poly_modulus_degree, moduli, p.scale_bits, "TenSEAL"),
        ),
        steps_checked=steps,
        max_abs_error=float(error.max()),
        refreshes_per_iteration=model.history.refreshes / max(steps, 1),
        reference=product.describe(
            implementation="tenseal",
            operation="ciphertext product (multiply + relinearise + rescale), 8192 slots",
            **security(PRODUCT_RING, PRODUCT_MODULI, PRODUCT_SCALE_BITS, "TenSEAL"),
        ),
    )


# ------------------------------------------------------------------------------ 2. sentiment
class HandWrittenTenSEALSentiment(ByHandOnTenSEAL):
    """The bag-of-words network (a word table summed into 8 linear hidden units, a sigmoid
    polynomial output, squared error) by per-review SGD on ``ckks_vector``, as a TenSEAL user
    writes it.

    ``ckks_vector`` holds a vector, so the table is one vector per hidden unit (its column over
    the vocabulary) and the output weights one vector of size 1 per hidden unit. For a review:
    each hidden unit as a dot product of its column with the review's bag of words (plain 0/1),
    the output as the sum of their products with the output weights, the polynomial and its
    slope; the output weights' update ``rate * delta * h``, the columns' ``rate * delta * w``
    broadcast over the review's words with ``matmul`` (the rate and the bag in the matrix).
    Then the owner refreshes every weight (decrypt, encrypt again). The same update as
    ``Sequential.bag_of_words``'s ``fit`` on batches of one review.
    """

    def __init__(
        self,
        context: Any,
        table: np.ndarray,
        output: np.ndarray,
        sigmoid: Any,
        learning_rate: float,
    ) -> None:
        super().__init__(context, sigmoid, learning_rate)
        self.vocabulary = table.shape[0]
        self.columns = [self.encrypt(column) for column in table.T]
        self.output = [self.encrypt([w]) for w in output[:, 0]]

    def step(self, words: np.ndarray, target: float) -> None:
        bag = np.zeros(self.vocabulary)
        bag[words] = 1.0
        hidden = [column.dot(bag.tolist()) for column in self.columns]
        z = hidden[0] * _fresh(self.output[0])
        for h, w in zip(hidden[1:], self.output[1:], strict=True):
            z = z + h * _fresh(w)
        delta = (z.polyval(self.sigmoid) - target) * z.polyval(self.slope)
        step = [(self.learning_rate * bag).tolist()]
        output = []
        for j, (h, w) in enumerate(zip(hidden, self.output, strict=True)):
            self.columns[j] = self.columns[j] - (delta * _fresh(w)).matmul(step)
            output.append(w - delta * h * self.learning_rate)
        self.columns = [self.refresh(c) for c in self.columns]  # the owner refreshes them all
        self.output = [self.refresh(w) for w in output]

    def weights(self) -> list[np.ndarray]:
        table = np.array([column.decrypt() for column in self.columns], dtype=np.float64).T
        output = np.array([w.decrypt()[0] for w in self.output], dtype=np.float64)
        return [table, output[:, None]]


def test_secure_sentiment(benchmark: Any, ckks: Ckks) -> None:
    """Reviews/s over one epoch of the full training set (owner refreshes included), then the
    held-out accuracy against the same network trained unencrypted on the same batches."""
    from hennframework.demos.sentiment import LOG_EVERY
    from hennframework.nn import BagOfWords, Batch, OwnerRefresher, Sequential
    from hennframework.nn.activations import get_sigmoid
    from hennframework.workflow.owner import keygen_options_for_model, scheme_for_model

    data = sentiment_data(SENTIMENT_BATCH)
    plain = Sequential.bag_of_words(data.vocabulary_size, 8, activation="lsq3", seed=0)
    # the parameter set and keys the owner makes for this model (`henn keygen --for sentiment`,
    # the keys row): the shortest chain that holds a step, and as many rotation keys as keep
    # the public material within 64 MB, other rotations made as sums of them
    scheme = scheme_for_model(ckks.scheme, plain, SENTIMENT_BATCH)
    options = keygen_options_for_model(scheme, plain, SENTIMENT_BATCH)
    keys = scheme.keygen(**options)
    model = copy.deepcopy(plain).encrypt(keys, scheme)
    refresher = OwnerRefresher(scheme, keys)
    # the same network's per-review SGD by hand on TenSEAL, at our ring and moduli
    p = scheme.params
    moduli = tuple(p.coeff_bits)
    hand_context = tenseal_context(p.poly_modulus_degree, moduli, p.scale_bits, rotations=True)
    table, output = (np.asarray(w, dtype=np.float64) for w in plain.weights())
    hand = HandWrittenTenSEALSentiment(
        hand_context, table, output, get_sigmoid("lsq3"), SENTIMENT_RATE
    )
    reviews = data.train[0]
    position = {"review": 0}

    def hand_reviews() -> None:
        for _ in range(SENTIMENT_BY_HAND_REVIEWS):
            row = position["review"]
            hand.step(reviews.inputs.row(row), float(reviews.targets[row, 0]))
            position["review"] = row + 1

    by_hand = ReferenceTimer(hand_reviews, calls=SENTIMENT_BY_HAND_CALLS)

    def epoch() -> None:
        # the encrypted loss kept every LOG_EVERY-th step, as `henn demo sentiment` keeps it
        model.fit(data.train, learning_rate=SENTIMENT_RATE, refresh=refresher, log_every=LOG_EVERY)

    trained = sum(batch.size for batch in data.train)
    benchmark.group = "secure path"
    measure(
        benchmark,
        epoch,
        items=trained,
        unit="review",
        rounds=1,
        warmup_rounds=0,
        setup=by_hand.setup,
        **_record(
            "sentiment", f"sentiment training (batch {SENTIMENT_BATCH})", **scheme_security(scheme)
        ),
        batch=SENTIMENT_BATCH,
        learning_rate=SENTIMENT_RATE,
        vocabulary=data.vocabulary_size,
        train_reviews=data.train_reviews,
        test_reviews=data.test_reviews,
        subset=f"one epoch of all {trained:,} training reviews ({len(data.train)} batches, "
        f"the encrypted loss kept every {LOG_EVERY}th step as the demo keeps it, "
        "owner refreshes included)",
        rotation_keys=options["rotations"],
        keys=f"made for the model (henn keygen --for sentiment): rotation keys for steps "
        f"{', '.join(map(str, options['rotations']))}",
    )
    # TenSEAL by hand against the same per-review SGD in plaintext
    replay = Sequential.bag_of_words(data.vocabulary_size, 8, activation="lsq3", seed=0)
    for row in range(position["review"]):
        single = Batch(
            BagOfWords.from_reviews([reviews.inputs.row(row)]), reviews.targets[row : row + 1]
        )
        replay.fit([single], learning_rate=SENTIMENT_RATE)
    hand_error = largest_difference(hand.weights(), replay.weights())
    assert hand_error < 1e-2, f"TenSEAL by hand drifted from plaintext SGD by {hand_error}"
    plain.fit(data.train, learning_rate=SENTIMENT_RATE)
    started = time.perf_counter()
    model.refresh(refresher)  # the last step leaves few levels: fresh weights to predict
    encrypted_accuracy = model.evaluate(
        data.test,
        decrypt=lambda t: np.asarray(scheme.decrypt_tensor(t, keys.secret), dtype=np.float64),
    )
    plain_accuracy = plain.evaluate(data.test)
    benchmark.extra_info.update(
        accuracy_run=f"encrypted and plain networks (same initial weights) trained for one "
        f"epoch on all {trained:,} training reviews in the same order, tested on all "
        f"{data.test_reviews:,} held-out reviews",
        accuracy_train_reviews=trained,
        encrypted_accuracy=encrypted_accuracy,
        plain_accuracy=plain_accuracy,
        refreshes=model.history.refreshes,
        evaluate_seconds=time.perf_counter() - started,
        hand_written=by_hand.describe(
            warmup_rounds=0,
            implementation="tenseal",
            operation="the same network's per-review SGD written by hand on ckks_vector "
            "(HandWrittenTenSEALSentiment), owner refresh after every review",
            items=SENTIMENT_BY_HAND_REVIEWS,
            reviews_checked=position["review"],
            max_abs_error=hand_error,
            **security(p.poly_modulus_degree, moduli, p.scale_bits, "TenSEAL"),
        ),
    )


# ------------------------------------------------------------------ 3. logistic regression
def breast_cancer() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's breast_cancer, shuffled, standardised and clipped to |x| <= 3."""
    datasets = pytest.importorskip("sklearn.datasets")
    x, y = datasets.load_breast_cancer(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(y))
    x, y = x[order], y[order].astype(np.float64)
    x = np.clip((x - x.mean(axis=0)) / x.std(axis=0), -3.0, 3.0) / 4.0
    return x, y


class HandWrittenTenSEAL(ByHandOnTenSEAL):
    """Logistic regression by per-sample SGD with encrypted weights, written on TenSEAL directly.

    The reference of target 3, as a TenSEAL user writes it: the weights in one ``ckks_vector``,
    each step ``z = w . x`` (plain sample), the sigmoid polynomial and its derivative, the
    squared-error gradient ``(s(z) - y) s'(z) x`` and the update; then the owner refreshes the
    weights (decrypt and encrypt again), once per step. The same update as
    ``Sequential.mlp([30, 1]).fit(batch_size=1)``, so both sides do the same arithmetic.
    """

    def __init__(
        self, context: Any, weights: np.ndarray, sigmoid: Any, learning_rate: float
    ) -> None:
        super().__init__(context, sigmoid, learning_rate)
        self.weights = self.encrypt(weights)

    def step(self, x: np.ndarray, y: float) -> None:
        z = self.weights.dot(x.tolist())
        delta = (z.polyval(self.sigmoid) - y) * z.polyval(self.slope)
        self.weights = self.weights - delta.matmul([(self.learning_rate * x).tolist()])
        self.weights = self.refresh(self.weights)  # the owner refreshes them

    def decrypt(self) -> np.ndarray:
        return np.asarray(self.weights.decrypt(), dtype=np.float64)


def test_secure_logistic_regression(benchmark: Any, ckks_lr: Ckks) -> None:
    """Samples/s of ours (mini-batches of LR_BATCH, packed in the slots) against
    HandWrittenTenSEAL (per-sample SGD, as TenSEAL's users write it), interleaved; ours at batch 1
    is timed in the same rounds for the like-for-like ratio. Held-out accuracy after one epoch of
    each side's arithmetic (plaintext replays, which the encrypted runs are checked against)."""
    from hennframework.nn import Sequential, make_batches
    from hennframework.nn.activations import get_sigmoid

    x, y = breast_cancer()
    features = x.shape[1]
    plain = Sequential.mlp([features, 1], activation=LR_SIGMOID, seed=0)
    batched = copy.deepcopy(plain).encrypt(ckks_lr.keys, ckks_lr.scheme)
    single = copy.deepcopy(plain).encrypt(ckks_lr.keys, ckks_lr.scheme)
    refresher = ckks_lr.refresher()
    p = ckks_lr.scheme.params
    moduli = tuple(p.coeff_bits)
    context = tenseal_context(p.poly_modulus_degree, moduli, p.scale_bits, rotations=True)
    initial = np.asarray(plain.weights()[0], dtype=np.float64).ravel()
    theirs = HandWrittenTenSEAL(context, initial, get_sigmoid(LR_SIGMOID), LR_RATE)
    position = {"batched": 0, "single": 0, "theirs": 0}

    def theirs_chunk() -> None:
        start = position["theirs"]
        for i in range(start, start + LR_SAMPLES):
            theirs.step(x[i], y[i])
        position["theirs"] = start + LR_SAMPLES

    def single_chunk() -> None:
        start = position["single"]
        chunk = slice(start, start + LR_SAMPLES)
        single.fit(x[chunk], y[chunk, None], batch_size=1, learning_rate=LR_RATE, refresh=refresher)
        position["single"] = start + LR_SAMPLES

    def batched_chunk() -> None:
        start = position["batched"]
        chunk = slice(start, start + LR_BATCH)
        batched.fit(
            x[chunk],
            y[chunk, None],
            batch_size=LR_BATCH,
            learning_rate=LR_BATCH_RATE,
            refresh=refresher,
        )
        position["batched"] = start + LR_BATCH

    reference = ReferenceTimer(theirs_chunk)
    per_sample = ReferenceTimer(single_chunk)

    def both_references() -> tuple[tuple[Any, ...], dict[str, Any]]:
        reference.setup()
        return per_sample.setup()

    benchmark.group = "secure path"
    measure(
        benchmark,
        batched_chunk,
        items=LR_BATCH,
        unit="sample",
        rounds=LR_ROUNDS,
        setup=both_references,
        **_record("logistic", f"logistic regression, mini-batch {LR_BATCH}", **ckks_lr.security),
        features=features,
        batch=LR_BATCH,
        learning_rate=LR_BATCH_RATE,
        per_sample_learning_rate=LR_RATE,
        sigmoid=LR_SIGMOID,
    )
    assert position["theirs"] == position["single"]

    def replay(seen: int, batch: int, rate: float) -> np.ndarray:
        model = copy.deepcopy(plain)
        model.fit(x[:seen], y[:seen, None], batch_size=batch, learning_rate=rate)
        return np.asarray(model.weights()[0], dtype=np.float64).ravel()

    def weights_of(model: Any) -> np.ndarray:
        return np.asarray(model.decrypt(ckks_lr.keys.secret).weights()[0], dtype=np.float64).ravel()

    per_sample_expected = replay(position["single"], 1, LR_RATE)
    batched_error = float(
        np.abs(weights_of(batched) - replay(position["batched"], LR_BATCH, LR_BATCH_RATE)).max()
    )
    single_error = float(np.abs(weights_of(single) - per_sample_expected).max())
    theirs_error = float(np.abs(theirs.decrypt()[:features] - per_sample_expected).max())
    # both sides follow the same SGD; what differs is CKKS's approximation error (scale 2**25)
    assert max(batched_error, single_error, theirs_error) < 5e-3, (
        batched_error,
        single_error,
        theirs_error,
    )
    # one epoch of each side's arithmetic on the training part, tested on the rest
    train = int(len(y) * 0.8)
    one_by_one = copy.deepcopy(plain)
    one_by_one.fit(x[:train], y[:train, None], batch_size=1, learning_rate=LR_RATE)
    in_batches = copy.deepcopy(plain)
    in_batches.fit(x[:train], y[:train, None], batch_size=LR_BATCH, learning_rate=LR_BATCH_RATE)
    held_out = make_batches(x[train:], y[train:, None], None)
    benchmark.extra_info.update(
        samples_checked=position["batched"],
        max_abs_error=batched_error,
        refreshes_per_sample=batched.history.refreshes / max(position["batched"], 1),
        per_sample=per_sample.describe(
            implementation="hennframework",
            operation="per-sample SGD step (batch_size=1)",
            items=LR_SAMPLES,
            max_abs_error=single_error,
            refreshes_per_sample=single.history.refreshes / max(position["single"], 1),
        ),
        accuracy_run=f"one epoch on the first {train} samples (plaintext, the same arithmetic "
        f"as each side), tested on the other {len(y) - train}",
        batched_accuracy=in_batches.evaluate(held_out),
        per_sample_accuracy=one_by_one.evaluate(held_out),
        reference=reference.describe(
            implementation="tenseal",
            operation="hand-written per-sample SGD step on ckks_vector, owner refresh every step",
            items=LR_SAMPLES,
            max_abs_error=theirs_error,
            **security(p.poly_modulus_degree, moduli, p.scale_bits, "TenSEAL"),
        ),
    )


# ------------------------------------------------------------------------------ 4. key sizes
@pytest.mark.parametrize("model_name", ["xor", "sentiment"])
def test_secure_public_keys(benchmark: Any, tmp_path: Path, model_name: str) -> None:
    """The public key file the owner workflow writes for one model (``henn keygen --for``)."""
    from hennframework.workflow.owner import generate_keys, make_model

    vocabulary = (
        sentiment_data(SENTIMENT_BATCH).vocabulary_size if model_name == "sentiment" else None
    )
    model = make_model(model_name, vocabulary_size=vocabulary)
    batch = 4 if model_name == "xor" else SENTIMENT_BATCH
    made: list[dict[str, Any]] = []
    folders: Iterator[Path] = (tmp_path / f"keys{i}" for i in range(10))

    def keygen() -> None:
        made.append(generate_keys(next(folders), scheme="ckks", for_model=model, batch_size=batch))

    benchmark.group = "secure path"
    measure(benchmark, keygen, items=1, unit="key set", rounds=1, warmup_rounds=0)
    summary = made[-1]
    public = Path(summary["public"])
    assert public.stat().st_size == summary["public_bytes"] > 0
    import hennframework

    scheme = hennframework.get_scheme("ckks", params=summary["parameter_set"])
    # TenSEAL by hand at the same ring and moduli: the public material its ckks_vector
    # operations need (dot products and matmul rotate), which TenSEAL makes all at once
    p = scheme.params
    moduli = tuple(p.coeff_bits)
    started = time.perf_counter()
    context = tenseal_context(p.poly_modulus_degree, moduli, p.scale_bits, rotations=True)
    made_in = time.perf_counter() - started
    theirs = len(
        context.serialize(
            save_public_key=True,
            save_secret_key=False,
            save_galois_keys=True,
            save_relin_keys=True,
        )
    )
    del context
    benchmark.extra_info.update(
        _record("keys", f"public keys for {model_name}", **scheme_security(scheme)),
        hand_written={
            "implementation": "tenseal",
            "operation": "a TenSEAL context with public, relinearisation and rotation keys "
            "(generate_galois_keys(): every power-of-two step, both ways), serialised without "
            "the secret key",
            "median": made_in,
            "items": 1,
            "public_bytes": theirs,
            **security(p.poly_modulus_degree, moduli, p.scale_bits, "TenSEAL"),
        },
        model=model_name,
        batch=batch,
        vocabulary=vocabulary,
        public_bytes=summary["public_bytes"],
        rotations=summary.get("rotations"),
        command=f"henn keygen --scheme ckks --for {model_name} --batch-size {batch}"
        + (f" --vocabulary-size {vocabulary}" if vocabulary else ""),
    )
