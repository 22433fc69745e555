"""``henn federated run``: federated training of an encrypted model on Flower's simulation engine.

Needs the ``federated`` extra (``pip install "hennframework[federated]"``: Flower with Ray). The
deployment engine (owner and parties as separate processes over gRPC) is run with Flower's own
``flower-superlink`` / ``flower-supernode`` / ``flwr run`` commands: see docs/federated.md.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from hennframework.cli import common

__all__ = ["register"]


def register(subparsers: Any) -> None:
    federated = subparsers.add_parser(
        "federated", help="federated training of an encrypted model on Flower"
    )
    commands = common.add_subcommands(federated, "federated")
    run = commands.add_parser(
        "run",
        help="owner and N parties on one machine (Flower simulation engine)",
        description="Split the reviews among N simulated parties, train the owner's encrypted "
        "sentiment network with encrypted FedAvg for R rounds, and compare with centralized "
        "encrypted training on the same reviews.",
    )
    run.add_argument("--parties", type=common.integer(1, 1000), default=4, help="parties (4)")
    run.add_argument("--rounds", type=common.integer(1, 10_000), default=20, help="rounds (20)")
    run.add_argument(
        "--data",
        metavar="PATH",
        default=None,
        help="reviews (any layout `henn demo sentiment` reads; default: the shipped rt-polarity)",
    )
    run.add_argument(
        "--split",
        choices=("iid", "label-skew"),
        default="iid",
        help="how the training reviews are split among the parties (iid)",
    )
    run.add_argument(
        "--local-steps",
        type=common.integer(1, 100_000),
        default=None,
        help="SGD steps per party per round (default: one pass over the data in all rounds; "
        "1 with --scheme ckks)",
    )
    common.add_learning_rate(run, None, "default: 0.1, or 0.025 with --scheme ckks")
    run.add_argument(
        "--batch-size",
        type=common.integer(1, 100_000),
        default=None,
        help="reviews per SGD step (default: 32, or 256 with --scheme ckks)",
    )
    common.add_hidden(run, 8)
    run.add_argument(
        "--limit", type=common.integer(4), default=None, help="use only the first N reviews"
    )
    common.add_params(run)
    run.add_argument(
        "--refresh",
        choices=("auto", "always"),
        default="auto",
        help="owner refresh of the aggregate: when the next round needs it (auto) or every round",
    )
    run.add_argument(
        "--seed",
        type=common.integer(-1),
        default=-1,
        help="seed for weights and keys, for reproducible experiments only (-1: CSPRNG)",
    )
    run.add_argument(
        "--no-centralized",
        dest="centralized",
        action="store_false",
        help="skip the centralized encrypted training run used for comparison",
    )
    common.add_output_options(run, "one JSON object on stdout", progress=True)
    run.set_defaults(func=run_simulation)


def _format(summary: dict[str, Any]) -> str:
    lines = [
        f"{summary['parties']} parties, {summary['rounds_planned']} rounds, "
        f"{summary['local_steps']} local step(s) per round of {summary['batch_size']} reviews at "
        f"learning rate {summary['learning_rate']:g}, split {summary['split']}; "
        f"scheme {summary['scheme']} ({summary['security']}); vocabulary "
        f"{summary['vocabulary']:,} words, {summary['held_out']:,} held-out reviews (the owner's)",
        "round  parties  reviews  accuracy  centralized  to parties  from parties  seconds  refresh",
    ]
    central = summary.get("centralized", {}).get("accuracy", [])
    for index, row in enumerate(summary["rounds"]):
        acc = "-" if row["accuracy"] is None else f"{row['accuracy']:.1%}"
        cen = f"{central[index]:.1%}" if index < len(central) else "-"
        lines.append(
            f"{row['round']:>5}  {row['parties']:>7}  {row['samples']:>7}  {acc:>8}  {cen:>11}  "
            f"{row['bytes_to_parties'] / 1e6:>8.2f}MB  {row['bytes_from_parties'] / 1e6:>10.2f}MB  "
            f"{row['seconds']:>7.2f}  {'yes' if row['refreshed'] else 'no':>7}"
        )
    lines.append(
        f"final accuracy {summary['final_accuracy']:.1%}"
        + (
            f" (centralized encrypted training on the same reviews: "
            f"{summary['centralized_final_accuracy']:.1%})"
            if summary.get("centralized_final_accuracy") is not None
            else ""
        )
        + f"; {summary['seconds_per_round']:.2f} s per round after the first; peak memory "
        f"{summary['peak_memory_mb']:.0f} MB (this process and finished children)"
    )
    return "\n".join(lines)


def run_simulation(args: argparse.Namespace) -> int:
    try:
        from hennframework.federated.apps import FederatedSettings
        from hennframework.federated.data import DataSpec
        from hennframework.federated.simulation import (
            centralized_baseline,
            peak_memory_mb,
            run_federated,
        )
    except ImportError as exc:
        common.usage_error(
            "henn federated run",
            f"Flower is not installed ({exc}); install the extra: "
            'pip install "hennframework[federated]".',
        )
    from hennframework.demos.common import progress_bar

    scheme = common.choice(args, "scheme").value
    settings = FederatedSettings(
        parties=args.parties,
        rounds=args.rounds,
        local_steps=args.local_steps,
        learning_rate=args.learning_rate,
        batch_size=args.batch_size,
        hidden=args.hidden,
        split=args.split,
        scheme=scheme,
        params=args.params,
        seed=None if args.seed == -1 else args.seed,
        refresh=args.refresh,
        data=DataSpec(data=args.data, limit=args.limit),
    )
    if scheme == "integer-vector":
        # said before any work: with these parameter sets the parties can read every weight
        print(
            "henn federated run: the integer-vector scheme is INSECURE: every party can read the "
            "model's weights from its ciphertexts. Use --scheme ckks (128-bit) to keep them secret.",
            file=sys.stderr,
        )
    bar = progress_bar(args.rounds, "federated rounds", common.show_progress(args))

    def progress(row: Any, _total: int) -> None:
        bar.update(1)
        if row.accuracy is not None:
            bar.set_postfix(accuracy=f"{row.accuracy:.3f}", seconds=f"{row.seconds:.1f}")

    try:
        result = run_federated(settings, progress=progress)
    finally:
        bar.close()
    summary: dict[str, Any] = {
        **result.to_json(),
        "parties": args.parties,
        "rounds_planned": args.rounds,
        "split": args.split,
    }
    rounds = result.rounds
    later = rounds[1:] or rounds
    summary["seconds_per_round"] = sum(r.seconds for r in later) / len(later)
    summary["bytes_per_round"] = sum(
        r.bytes_to_parties + r.bytes_from_parties for r in rounds
    ) / len(rounds)
    summary["final_accuracy"] = rounds[-1].accuracy
    summary["peak_memory_mb"] = peak_memory_mb()
    if args.centralized:
        central = centralized_baseline(settings)
        summary["centralized"] = central
        summary["centralized_final_accuracy"] = (
            central["accuracy"][-1] if central["accuracy"] else None
        )
    common.emit(args, summary, lambda: _format(summary))
    sys.stdout.flush()
    return 0
