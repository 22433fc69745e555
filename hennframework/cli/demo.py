"""``henn demo xor`` and ``henn demo sentiment``: the networks of Trask's 2017 post, encrypted."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from hennframework.cli import common, data_options

__all__ = ["register"]

#: ``--json`` of the demos: the summary comes once training ends.
SUMMARY_JSON = "print a machine-readable summary at the end"


def register(subparsers: Any) -> None:
    demo = subparsers.add_parser("demo", help="run a demonstration (xor, sentiment)")
    demos = common.add_subcommands(demo, "demo", title="demos", metavar="DEMO")

    xor = demos.add_parser(
        "xor", help="train the XOR network of Trask's 2017 post with encrypted weights"
    )
    common.add_params(xor, "parameter set of the scheme (default: the scheme's)")
    common.add_learning_rate(
        xor, None, "Trask's 2017 post: 0.015; 0.5 with --scheme ckks, see docs/model.md"
    )
    xor.add_argument(
        "--iterations",
        type=common.positive_int,
        default=None,
        help="training iterations, 4 rows each (3000; 300 with --scheme ckks)",
    )
    common.add_hidden(xor, 4)
    xor.add_argument(
        "--seed",
        type=common.integer(-1),
        default=0,
        help="seed for initial weights and, for reproducibility only, keys (0); -1: fresh CSPRNG keys",
    )
    xor.add_argument(
        "--init-scale",
        type=common.init_scale,
        default=4.0,
        help=f"initial weights uniform on ±scale/sqrt(fan-in), > 0 and <= {common.MAX_INIT_SCALE:g} (4)",
    )
    xor.add_argument(
        "--activation",
        type=common.plain_activation,
        default="taylor3",
        help="sigmoid approximation: taylor3, taylor5, taylor7, lsq3, lsq5, or exact with --plain "
        "(taylor3)",
    )
    xor.add_argument(
        "--plain", action="store_true", help="train the same network unencrypted, for comparison"
    )
    common.add_track_noise(xor)
    common.add_output_options(xor, SUMMARY_JSON, progress=True)
    xor.set_defaults(func=run_xor)

    sentiment = demos.add_parser(
        "sentiment",
        help="train Trask's sentiment network on movie reviews (shipped data, or --data FILE)",
    )
    sentiment_data = sentiment.add_argument_group("data")
    sentiment_data.add_argument(
        "--data",
        default=None,
        metavar="PATH",
        help="labelled reviews: a text<TAB>label or text,label file, an rt-polarity folder, "
        "REVIEWS,LABELS files, or an aclImdb folder (default: the sentence polarity dataset "
        "v1.0 of Pang and Lee, ACL 2005, shipped with hennframework)",
    )
    data_options.add_text_options(sentiment_data)
    sentiment_data.add_argument(
        "--test-size",
        type=data_options.holdout_size,
        default=None,
        metavar="N",
        help="held-out reviews at the end: a count, or a fraction such as 0.2 (default: 20 %%, "
        "at most 1000)",
    )
    common.add_params(sentiment)
    sentiment.add_argument("--epochs", type=common.positive_int, default=1, help="epochs (1)")
    common.add_learning_rate(sentiment, None, "0.1; 0.025 with --scheme ckks")
    sentiment.add_argument(
        "--batch-size",
        type=common.positive_int,
        default=None,
        help="reviews per SGD step (32, 256 with --scheme ckks: amortises per-operation cost; "
        "1 is the original per-review SGD)",
    )
    common.add_hidden(sentiment, 8)
    data_options.add_vocabulary_options(sentiment)
    sentiment.add_argument(
        "--limit",
        type=common.positive_int,
        default=None,
        help="use only the first N reviews (after interleaving)",
    )
    sentiment.add_argument(
        "--activation",
        type=common.plain_activation,
        default="lsq3",
        help="sigmoid approximation (lsq3)",
    )
    sentiment.add_argument(
        "--seed",
        type=common.non_negative_int,
        default=0,
        help="seed for initial weights and keys (reproducibility only)",
    )
    sentiment.add_argument("--plain", action="store_true", help="train unencrypted only")
    sentiment.add_argument(
        "--compare", action="store_true", help="also train the unencrypted network the same way"
    )
    common.add_track_noise(sentiment)
    common.add_output_options(sentiment, SUMMARY_JSON, progress=True)
    sentiment.set_defaults(func=run_sentiment)


def _exact_needs_plain(args: argparse.Namespace) -> None:
    """The exact sigmoid cannot run on ciphertexts: say so before any key is made."""
    if args.activation == "exact" and not args.plain:
        common.usage_error(
            f"henn demo {args.demo}",
            "--activation exact trains only unencrypted: add --plain, or choose a polynomial "
            "approximation such as --activation lsq3.",
        )


#: GPU backends, for which the demos' networks are too small to pay off (docs/gpu.md).
GPU_BACKENDS = frozenset({"cupy"})


def _note_small_network_on_gpu(backend: str | None, encrypted: bool) -> None:
    """Say, before a long wait, that the demos' networks run faster on the CPU backend
    (``backend``: the demo settings' resolved name)."""
    if not encrypted or backend not in GPU_BACKENDS:
        return
    from hennframework import registry

    try:
        registry.get_backend(backend)
    except Exception:  # not usable here: the demo itself reports why, with the fix
        return
    print(
        f"henn: note: the {backend!r} backend is slower than 'numpy' for a network this small "
        "(each step is thousands of operations on a few hundred values; on an NVIDIA H200, "
        "XOR took 48 ms per iteration against 3 ms on its host CPU). Use --backend numpy here, "
        "and the GPU for batches of thousands of vectors (docs/gpu.md).",
        file=sys.stderr,
    )


def run_xor(args: argparse.Namespace) -> int:
    from hennframework.demos.xor import XorSettings, format_summary
    from hennframework.demos.xor import run_xor as train

    _exact_needs_plain(args)
    settings = XorSettings(
        iterations=args.iterations,
        learning_rate=args.learning_rate,
        hidden=args.hidden,
        init_scale=args.init_scale,
        activation=args.activation,
        seed=None if args.seed == -1 else args.seed,
        **common.chosen(args),
        params=args.params,
        encrypted=not args.plain,
        absorb_noise=not args.track_noise,
    )
    _note_small_network_on_gpu(settings.backend, settings.encrypted)
    summary = train(settings, show_progress=common.show_progress(args))
    common.emit(args, summary, lambda: format_summary(summary))
    return 0 if summary["learned"] else 1


def run_sentiment(args: argparse.Namespace) -> int:
    from hennframework.data.naming import command_line_names
    from hennframework.demos.sentiment import SentimentSettings, format_summary
    from hennframework.demos.sentiment import run_sentiment as train

    _exact_needs_plain(args)
    settings = SentimentSettings(
        data=args.data,
        **data_options.text_settings(args),
        params=args.params,
        epochs=args.epochs,
        learning_rate=args.learning_rate,
        batch_size=args.batch_size,
        hidden=args.hidden,
        min_count=args.min_count,
        polarity_cutoff=args.polarity_cutoff,
        test_size=args.test_size,
        limit=args.limit,
        activation=args.activation,
        seed=args.seed,
        encrypted=not args.plain,
        compare=args.compare,
        absorb_noise=not args.track_noise,
        **common.chosen(args),
    )
    _note_small_network_on_gpu(settings.backend, settings.encrypted)
    with command_line_names():  # data errors name --skip-empty, not skip_empty=True
        summary = train(settings, show_progress=common.show_progress(args))
    common.emit(args, summary, lambda: format_summary(summary))
    sys.stdout.flush()
    return 0
