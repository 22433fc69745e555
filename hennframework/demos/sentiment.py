"""Trask's sentiment network on real movie reviews, with encrypted weights.

The bag-of-words network of Andrew Trask's 2017 post "Safe AI" (its section 9). Protocol:
interleave positive and negative reviews, hold out the last ``test_size`` (20 %, at most 1,000, by
default), build the vocabulary (min_count, polarity_cutoff) on the training part only, train with
encrypted weights (no secret key on the training side), and let the key holder decrypt the
held-out predictions to measure accuracy. ``--compare`` also trains the unencrypted network the
same way (same batches, initial weights and sigmoid polynomial).

Without ``data`` it runs on the sentence polarity dataset v1.0 (Pang and Lee, ACL 2005) shipped
in the package; ``data`` takes any layout :func:`hennframework.data.load_reviews` reads.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from hennframework.data.bundled import RT_POLARITY_CITATION, load_rt_polarity
from hennframework.data.loaders import (
    interleave,
    load_reviews,
    parse_data_spec,
    resolve_test_size,
    train_test_split_last,
)
from hennframework.data.naming import option
from hennframework.data.text import EncodedReviews, build_vocabulary, make_tokenizer
from hennframework.demos.common import (
    describe_scheme,
    make_scheme,
    progress_bar,
    refresh_if_refused,
)
from hennframework.exceptions import (
    InputError,
    InsecureParametersWarning,
    NoiseBudgetExhaustedError,
    OverflowRiskError,
)
from hennframework.nn import (
    BagOfWords,
    Batch,
    OwnerRefresher,
    Progress,
    Sequential,
    make_batches,
    word_model_defaults,
)
from hennframework.nn.training import count_correct, describe_absorbed
from hennframework.workflow.owner import scheme_for_model

#: Steps between logged (kept) training records. The demo reads no loss, and the training loop
#: keeps only a logged step's encrypted loss decryptable, so logging every step would spend
#: owner refreshes on losses nobody decrypts.
LOG_EVERY = 10


@dataclass
class SentimentSettings:
    """What ``henn demo sentiment`` runs; ``data=None`` is the shipped rt-polarity data.

    ``test_size`` is a count, a fraction in (0, 1), or None (20 % of the reviews, at most 1,000);
    ``tokenizer`` is ``auto``, ``words`` or ``whitespace`` and ``lowercase`` None follows it (see
    :func:`hennframework.data.text.make_tokenizer`).
    """

    data: str | None = None
    data_format: str = "auto"
    encoding: str | None = None
    header: bool | None = None
    skip_empty: bool = False
    tokenizer: str = "auto"
    lowercase: bool | None = None
    params: str | None = None
    epochs: int = 1
    learning_rate: float | None = None  # None: the scheme's default (word_model_defaults)
    batch_size: int | None = None  # None: the scheme's default (word_model_defaults)
    hidden: int = 8
    min_count: int = 10
    polarity_cutoff: float = 0.1
    test_size: int | float | None = None
    limit: int | None = None
    activation: str = "lsq3"
    seed: int | None = 0
    encrypted: bool = True
    compare: bool = False
    scheme: str | None = None
    backend: str | None = None
    absorb_noise: bool = True  # False: track the weights' noise forward (more refreshes)


@dataclass
class PreparedData:
    train: list[Batch]
    test: list[Batch]
    vocabulary_size: int
    train_reviews: int
    test_reviews: int
    source: str
    encoding: str
    tokenizer: str = "whitespace"
    notes: tuple[str, ...] = field(default=())
    citation: str | None = None


def _batches(encoded: EncodedReviews, batch_size: int) -> list[Batch]:
    return make_batches(BagOfWords(encoded.indices, encoded.offsets), encoded.labels, batch_size)


def batch_and_rate(settings: SentimentSettings, scheme_name: str | None) -> tuple[int, float]:
    """The batch size and learning rate to train with: the settings', or the scheme's defaults
    (:func:`hennframework.nn.word_model_defaults`) where they are None."""
    return word_model_defaults(scheme_name, settings.batch_size, settings.learning_rate)


def prepare(settings: SentimentSettings) -> PreparedData:
    """Load, interleave, split, build the vocabulary on the training part, encode as CSR batches
    (of ``settings.batch_size``; None: the default of ``settings.scheme``, see
    :func:`hennframework.nn.word_model_defaults`)."""
    batch_size, _ = batch_and_rate(settings, settings.scheme)
    if settings.data is None:
        loaded = load_rt_polarity()
    else:
        loaded = load_reviews(
            parse_data_spec(settings.data),
            format=settings.data_format,
            encoding=settings.encoding,
            header=settings.header,
            skip_empty=settings.skip_empty,
        )
    dataset = interleave(loaded)
    if settings.limit is not None:
        limit_name = option("limit", "--limit")
        if settings.limit < 2:
            raise InputError(
                f"{limit_name} {settings.limit} leaves too few reviews: at least 2 are needed "
                "(one to train on, one to test)."
            )
        if isinstance(settings.test_size, int) and settings.limit <= settings.test_size:
            raise InputError(
                f"{limit_name} {settings.limit} leaves nothing to train on with "
                f"{option('test_size', '--test-size')} {settings.test_size}; raise the first or "
                "lower the second."
            )
        dataset = dataset.subset(slice(0, settings.limit))
    train, test = train_test_split_last(
        dataset, resolve_test_size(settings.test_size, len(dataset))
    )
    tokenizer = make_tokenizer(settings.tokenizer, settings.lowercase, data_format=loaded.format)
    vocabulary = build_vocabulary(
        train.reviews,
        train.labels,
        settings.min_count,
        settings.polarity_cutoff,
        tokenize=tokenizer,
    )
    if len(vocabulary) == 0:
        raise InputError(
            f"the vocabulary is empty: no word occurs more than "
            f"{option('min_count', '--min-count')} {settings.min_count} times in the "
            f"{len(train):,} training reviews. Pass a smaller {option('min_count', '--min-count')} "
            "(such as 1) or use more reviews."
        )
    train_encoded = vocabulary.encode_many(train.reviews, train.labels)
    test_encoded = vocabulary.encode_many(test.reviews, test.labels)
    return PreparedData(
        _batches(train_encoded, batch_size),
        _batches(test_encoded, 256),
        len(vocabulary),
        len(train),
        len(test),
        dataset.source,
        dataset.encoding,
        tokenizer.describe(),
        dataset.notes,
        RT_POLARITY_CITATION if settings.data is None else None,
    )


def run_sentiment(
    settings: SentimentSettings,
    *,
    show_progress: bool = True,
    trained: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train (encrypted and/or plain) and return a JSON-ready summary.

    ``trained``, if given, receives the trained encrypted network, its scheme and keys *before*
    the evaluation, so a caller keeps the model whatever the evaluation does. An evaluation that
    cannot decrypt (or is refused) is reported in the summary (``evaluation_error``), never
    raised after the training's work.
    """
    scheme: Any = None
    if settings.encrypted:  # first: its defaults (and a bad parameter set) before the data
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", InsecureParametersWarning)
            scheme = make_scheme(settings.scheme, settings.params, settings.backend)
    batch_size, learning_rate = batch_and_rate(
        settings, scheme.name if scheme is not None else settings.scheme
    )
    settings = replace(settings, batch_size=batch_size, learning_rate=learning_rate)
    if not 0.0 < learning_rate < float("inf"):
        raise InputError(f"the learning rate must be a positive number (got {learning_rate})")
    prepared = prepare(settings)
    summary: dict[str, Any] = {
        "data": prepared.source,
        "encoding": prepared.encoding,
        "tokenizer": prepared.tokenizer,
        "data_notes": list(prepared.notes),
        "citation": prepared.citation,
        "train_reviews": prepared.train_reviews,
        "test_reviews": prepared.test_reviews,
        "vocabulary": prepared.vocabulary_size,
        "hidden": settings.hidden,
        "epochs": settings.epochs,
        "learning_rate": settings.learning_rate,
        "batch_size": settings.batch_size,
        "activation": settings.activation,
    }
    network = Sequential.bag_of_words(
        prepared.vocabulary_size,
        settings.hidden,
        activation=settings.activation,
        seed=settings.seed,
    )
    total = prepared.train_reviews * settings.epochs

    def train(
        model: Sequential,
        label: str,
        refresher: OwnerRefresher | None = None,
        reveal: Callable[[Any], Any] | None = None,
    ) -> float | None:
        """Train with a progress bar; returns the running training accuracy where it is known.

        ``reveal`` (the key holder's decryption) turns encrypted outputs into numbers for it.
        """
        bar = progress_bar(total, label, show_progress)
        scored = {"correct": 0, "seen": 0}

        def update(report: Progress) -> None:
            bar.update(model.history.samples - bar.n)
            if report.batch is None or report.outputs is None:
                return
            outputs = report.outputs
            if model.encrypted:
                if reveal is None:
                    return
                try:
                    outputs = reveal(outputs)
                except NoiseBudgetExhaustedError:
                    # outputs deeper than the weights' budget guarantees are refused, never
                    # guessed: the running accuracy counts the batches that decrypt
                    return
            scored["correct"] += count_correct(outputs, report.batch.targets)
            scored["seen"] += report.batch.size
            if model.history.steps % 20 == 0:
                bar.set_postfix(
                    {
                        "reviews/s": f"{model.history.samples_per_second:,.0f}",
                        "train acc": f"{scored['correct'] / scored['seen']:.3f}",
                    },
                    refresh=False,
                )

        try:
            model.fit(
                prepared.train,
                epochs=settings.epochs,
                learning_rate=learning_rate,
                refresh=refresher,
                progress=update,
                log_every=LOG_EVERY,
                absorb_noise=settings.absorb_noise,
            )
        finally:
            bar.close()
        return scored["correct"] / scored["seen"] if scored["seen"] else None

    if scheme is not None:
        if settings.params is None:  # the set the scheme recommends for this network, if any
            scheme = scheme_for_model(scheme, network, settings.batch_size)
        keyed = settings.seed is not None and scheme.name == "integer-vector"
        keys = scheme.keygen(seed=settings.seed) if keyed else scheme.keygen()
        encrypted = network.encrypt(keys)

        def decrypt(output: Any) -> Any:  # the key holder decrypts outputs (accuracy)
            return scheme.decrypt_tensor(output, keys.secret)

        refresher = OwnerRefresher(scheme, keys)
        train_accuracy = train(encrypted, "sentiment (encrypted)", refresher, decrypt)
        if trained is not None:  # the model first: nothing below can lose it
            trained.update({"network": encrypted, "scheme": scheme, "keys": keys})
        started = time.perf_counter()
        accuracy: float | None = None
        try:
            # refreshed first only if refused (CKKS ends training with few levels left)
            accuracy = refresh_if_refused(
                encrypted, refresher, lambda: encrypted.evaluate(prepared.test, decrypt=decrypt)
            )
        except (NoiseBudgetExhaustedError, OverflowRiskError) as error:
            summary["evaluation_error"] = (
                f"the held-out evaluation could not be completed ({error}); the trained "
                "encrypted model is kept and its training figures below are valid."
            )
        history = encrypted.history
        summary.update(
            {
                **describe_scheme(scheme),
                "encrypted_test_accuracy": accuracy,
                "encrypted_train_accuracy": train_accuracy,
                "encrypted_reviews_per_second": history.samples_per_second,
                "encrypted_train_seconds": history.seconds,
                "owner_refreshes": history.refreshes,
                "absorbed_noise": history.absorbed_summary(),
                "evaluate_seconds": time.perf_counter() - started,
            }
        )
    if settings.compare or not settings.encrypted:
        train(network, "sentiment (plain)")
        summary.update(
            {
                "plain_test_accuracy": network.evaluate(prepared.test),
                "plain_reviews_per_second": network.history.samples_per_second,
            }
        )
    return summary


def format_summary(summary: dict[str, Any]) -> str:
    lines = [
        f"data: {summary['data']} ({summary['encoding']}); {summary['train_reviews']:,} training and "
        f"{summary['test_reviews']:,} held-out reviews; tokenizer {summary['tokenizer']}; "
        f"vocabulary {summary['vocabulary']:,} words",
        *(f"  note: {note}" for note in summary.get("data_notes", [])),
    ]
    if summary.get("citation"):
        lines.append(f"  cite: {summary['citation']}")
    lines += [
        f"network: bag of words -> {summary['hidden']} hidden -> sigmoid ({summary['activation']}); "
        f"{summary['epochs']} epoch(s), learning rate {summary['learning_rate']}, batch {summary['batch_size']}",
    ]
    if "encrypted_test_accuracy" in summary:
        accuracy = summary["encrypted_test_accuracy"]
        lines.append(
            f"encrypted ({summary['scheme']} / {summary['parameter_set']}, {summary['security']}, "
            f"{summary['backend']}): test accuracy "
            f"{'not available' if accuracy is None else f'{accuracy:.1%}'}, "
            f"{summary['encrypted_reviews_per_second']:,.0f} reviews/s, {summary['owner_refreshes']} owner refreshes"
        )
        absorbed = describe_absorbed(summary.get("absorbed_noise"))
        if absorbed:
            lines.append(f"  {absorbed}")
    if "plain_test_accuracy" in summary:
        lines.append(
            f"unencrypted, trained the same way: test accuracy {summary['plain_test_accuracy']:.1%}, "
            f"{summary['plain_reviews_per_second']:,.0f} reviews/s"
        )
    if "encrypted_reviews_per_second" in summary and "plain_reviews_per_second" in summary:
        ratio = summary["plain_reviews_per_second"] / max(
            summary["encrypted_reviews_per_second"], 1e-9
        )
        lines.append(f"encryption costs {ratio:.1f}x in throughput")
    if summary.get("evaluation_error"):
        lines.append(f"note: {summary['evaluation_error']}")
    return "\n".join(lines)
