"""The owner/party workflow commands (walkthrough: docs/parties.md).

Owner (holds secret keys): ``henn keygen``, ``henn decrypt``, ``henn make-switch-key``,
``henn refresh``, ``henn serve-refresh``. Anyone with the public key: ``henn encrypt-model``.
Party (public files and its own data only): ``henn train``, ``henn predict``. Whoever relays the
model: ``henn switch-key``. Any file: ``henn inspect``.

Every command takes ``--json`` (one JSON object on stdout); progress bars go to stderr and are off
with ``--json``, ``--no-progress`` or when stderr is not a terminal. ``henn train`` exits with
status 3 when it stopped early because the model needs an owner refresh (the model is saved).
"""

from __future__ import annotations

import argparse
import functools
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hennframework.cli import common, data_options

__all__ = ["EXIT_NEEDS_REFRESH", "register"]

#: ``henn train`` stopped before the planned steps because the model needs an owner refresh.
EXIT_NEEDS_REFRESH = 3

#: Largest ``keygen --max-dim``: the key's T has one row per dimension; the models here encrypt
#: scalars and short vectors, so a longer key is a typo that would only cost memory and time.
MAX_KEY_DIM = 1 << 20


# ------------------------------------------------------------------------------------------
# shared pieces
# ------------------------------------------------------------------------------------------
#: The usual ``--force`` help of a command that writes ``--out``.
REPLACE_OUT = "replace --out if it exists (refused otherwise)"

#: ``--public`` of the party commands, which may be left out when the model names its key.
PUBLIC_OF_MODEL = "public key the model is encrypted under"

#: ``--public`` of the owner commands that can re-encrypt under another key.
REENCRYPT_PUBLIC = "re-encrypt with this public key (default: the secret key)"


def _file(
    parser: Any, option: str, help: str, *, required: bool = False, dest: str | None = None
) -> None:
    """A ``FILE`` option naming an existing file to read, spelled one way in every command."""
    parser.add_argument(
        option, dest=dest, required=required, metavar="FILE", type=common.input_file, help=help
    )


def _out(parser: Any, help: str, *, required: bool = True, force: str = REPLACE_OUT) -> None:
    """``--out FILE`` (a file to write) and the ``--force`` that lets it replace a file."""
    parser.add_argument(
        "--out", required=required, metavar="FILE", type=common.output_file, help=help
    )
    parser.add_argument("--force", action="store_true", help=force)


def _folder(parser: Any, option: str, help: str, *, required: bool = False) -> None:
    """A ``DIR`` option: a folder that exists or can be created."""
    parser.add_argument(option, required=required, metavar="DIR", type=common.directory, help=help)


def _data_options(parser: argparse.ArgumentParser, required: bool = True) -> None:
    group = parser.add_argument_group("data")
    group.add_argument(
        "--data",
        required=required,
        metavar="PATH",
        help="'xor' (built-in rows), a CSV file (last column = target) for MLPs, or labelled "
        "reviews for sentiment (a text<TAB>label or text,label file, an rt-polarity folder, "
        "REVIEWS,LABELS files, aclImdb)",
    )
    data_options.add_text_options(group, applies_to="reviews")
    data_options.add_subset_options(
        group, "reviews: skip the first N (after interleaving pos/neg)", "reviews: use at most N"
    )
    group.add_argument(
        "--target-columns",
        type=common.positive_int,
        default=1,
        help="CSV: how many last columns are targets (1)",
    )


def _data(args: argparse.Namespace) -> Any:
    from hennframework.workflow.party import DataOptions

    return DataOptions(
        args.data,
        **data_options.text_settings(args),
        skip=args.skip,
        limit=args.limit,
        target_columns=args.target_columns,
    )


def _backend(args: argparse.Namespace) -> str | None:
    return getattr(args, "backend", None)


def _prog(args: argparse.Namespace) -> str:
    return f"henn {args.command}"


def _refuse_overwrite(
    args: argparse.Namespace,
    option: str,
    path: str | None,
    inputs: tuple[tuple[str, str | None], ...] = (),
) -> None:
    """Stop before any work unless ``path`` is new or ``--force`` was given (see common)."""
    common.refuse_overwrite(
        _prog(args), option, path, force=bool(getattr(args, "force", False)), inputs=inputs
    )


def _bar(args: argparse.Namespace, total: int, description: str) -> Any:
    from tqdm.auto import tqdm

    return tqdm(
        total=total,
        desc=description,
        disable=None if common.show_progress(args) else True,
        file=sys.stderr,
        dynamic_ncols=True,
        leave=False,
    )


def _quiet_warnings(
    run: Callable[[argparse.Namespace], int],
) -> Callable[[argparse.Namespace], int]:
    """Show each warning once as ``henn: warning: ...`` (the insecure-parameters notice included)."""

    def wrapped(args: argparse.Namespace) -> int:
        from hennframework.data.naming import command_line_names

        with warnings.catch_warnings(record=True) as caught, command_line_names():
            warnings.simplefilter("always")
            try:
                return run(args)
            finally:
                seen: set[str] = set()
                for item in caught:
                    if not issubclass(item.category, UserWarning):
                        continue  # deprecations and the like are for developers, not users
                    message = " ".join(str(item.message).split())
                    if message not in seen:
                        seen.add(message)
                        print(f"henn: warning: {message}", file=sys.stderr)

    wrapped.__doc__ = run.__doc__
    return wrapped


def _command(
    subparsers: Any, name: str, help: str, run: Callable[[argparse.Namespace], int]
) -> argparse.ArgumentParser:
    """Add the subcommand ``name``, which runs ``run`` with warnings shown once."""
    parser: argparse.ArgumentParser = subparsers.add_parser(name, help=help)
    parser.set_defaults(func=_quiet_warnings(run))
    return parser


# ------------------------------------------------------------------------------------------
# registration
# ------------------------------------------------------------------------------------------
def register(subparsers: Any) -> None:
    command = functools.partial(_command, subparsers)
    p = command(
        "keygen",
        "owner: make a key pair (DIR/secret.henn 0600, DIR/public.henn)",
        run_keygen,
    )
    _folder(
        p, "--out", "folder for secret.henn and public.henn (created if missing)", required=True
    )
    common.add_params(p, "parameter set of the scheme (default: the scheme's)")
    p.add_argument(
        "--seed",
        type=common.non_negative_int,
        default=None,
        help="reproducible keys FOR TESTS ONLY (whoever knows the seed knows the secret key)",
    )
    p.add_argument(
        "--max-dim",
        type=common.integer(1, MAX_KEY_DIM),
        default=None,
        help="integer-vector: largest vector length of the key (1)",
    )
    p.add_argument("--force", action="store_true", help="overwrite keys already in DIR")
    model = p.add_argument_group(
        "keys for one model (CKKS: only the rotation keys that model uses, a smaller public key)"
    )
    model.add_argument(
        "--for",
        dest="for_arch",
        metavar="ARCH",
        type=common.architecture,
        help="the model the keys are for: xor, sentiment or mlp:SIZES (default: keys for any model)",
    )
    model.add_argument(
        "--batch-size",
        metavar="N",
        type=common.positive_int,
        default=None,
        help="with --for: rows per training step the party will use (xor: 4; sentiment: what "
        "`henn train` uses by default, 256 under CKKS; required for mlp); smaller batches are "
        "covered too",
    )
    common.add_hidden(model, 8, "with --for sentiment: ")
    model.add_argument(
        "--vocabulary-size",
        metavar="N",
        type=common.positive_int,
        default=None,
        help="with --for sentiment: words in the vocabulary (required)",
    )
    model.add_argument(
        "--rotation-keys",
        metavar="N",
        type=common.positive_int,
        default=None,
        help="with --for (CKKS): at most N rotation keys, 11.7 MB each at n16384 and 7.2 MB at "
        "n16384-9 (default: as many as keep the public key within 64 MB, 4 and 7); other "
        "rotations are made as sums of them, so more keys train faster",
    )
    common.add_output_options(p)

    p = command(
        "encrypt-model",
        "encrypt a new or plain model under a public key",
        run_encrypt_model,
    )
    _file(p, "--public", "public key file (public.henn)", required=True)
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--arch",
        type=common.architecture,
        help="xor, sentiment or mlp:SIZES (e.g. mlp:3,4,1); at most one weight per KiB of memory",
    )
    _file(source, "--from", "a plain model file (henn decrypt --out)", dest="from_plain")
    _out(p, "encrypted model file to write")
    p.add_argument(
        "--seed",
        type=common.non_negative_int,
        default=None,
        help="seed of the initial weights, for reproducible experiments only: everyone who has "
        "the seed can reproduce the starting weights (default: fresh weights from the operating "
        "system's CSPRNG)",
    )
    p.add_argument(
        "--activation",
        type=common.activation,
        default=None,
        help="sigmoid polynomial (xor/mlp: taylor3, sentiment: lsq3)",
    )
    p.add_argument(
        "--init-scale",
        type=common.init_scale,
        default=None,
        help=f"initial weights uniform on ±scale/sqrt(fan-in) (> 0, <= {common.MAX_INIT_SCALE:g})",
    )
    common.add_hidden(p, 8, "sentiment: ")
    vocab = p.add_argument_group("sentiment vocabulary")
    _file(vocab, "--vocabulary", "vocabulary JSON (Vocabulary.to_json)")
    vocab.add_argument(
        "--vocabulary-from", metavar="DATA", help="build the vocabulary from these reviews"
    )
    data_options.add_vocabulary_options(vocab)
    data_options.add_text_options(vocab, applies_to="--vocabulary-from")
    data_options.add_subset_options(
        vocab,
        "--vocabulary-from: skip the first N reviews",
        "--vocabulary-from: use at most N reviews",
    )
    common.add_output_options(p)

    p = command(
        "train",
        "party: train an encrypted model on your data (public files only)",
        run_train,
    )
    _file(p, "--model", "encrypted model file", required=True)
    _file(p, "--public", PUBLIC_OF_MODEL)
    _out(
        p,
        "trained model file to write",
        force="replace --out (or --history-out) if it exists, even when it is the --model file",
    )
    p.add_argument("--epochs", type=common.positive_int, default=1, help="passes over the data (1)")
    common.add_learning_rate(p, None, "0.1; 0.025 for a sentiment model under CKKS")
    p.add_argument(
        "--batch-size",
        type=common.positive_int,
        default=None,
        help="rows per SGD step (default: all rows for CSV/xor; for sentiment 32 reviews, "
        "256 under CKKS)",
    )
    _folder(
        p,
        "--exchange",
        "refresh exchange folder shared with the owner (`henn serve-refresh`); without it "
        "training stops cleanly when the model needs an owner refresh (exit status 3)",
    )
    p.add_argument(
        "--refresh-timeout",
        type=common.seconds,
        default=600.0,
        help="seconds to wait for the owner's refresh (600)",
    )
    p.add_argument(
        "--no-final-refresh",
        action="store_true",
        help="with --exchange: do not refresh the trained weights once more at the end (by "
        "default they are, where training left them with less noise budget than a fresh "
        "encryption, so that `henn predict` works on the saved model without an owner refresh)",
    )
    p.add_argument(
        "--resume", action="store_true", help="continue the unfinished run saved in the model"
    )
    p.add_argument(
        "--max-steps",
        type=common.positive_int,
        default=None,
        help="stop after this many steps (default: no limit)",
    )
    p.add_argument(
        "--log-every",
        type=common.positive_int,
        default=1,
        help="keep the encrypted loss of every N-th step (1)",
    )
    p.add_argument(
        "--history-out",
        metavar="FILE",
        type=common.output_file,
        help="also write the training history to its own file",
    )
    common.add_track_noise(p)
    _data_options(p)
    common.add_output_options(p, progress=True)

    p = command("predict", "party: encrypted predictions of a model on your data", run_predict)
    _file(p, "--model", "model file (encrypted, or plain for the owner)", required=True)
    _file(p, "--public", PUBLIC_OF_MODEL)
    _out(p, "predictions file to write (required for encrypted models)", required=False)
    _data_options(p)
    common.add_output_options(p, progress=True)

    p = command(
        "decrypt",
        "owner: decrypt a model, predictions or a training history",
        run_decrypt,
    )
    _file(p, "--secret", "secret key file (secret.henn)", required=True)
    what = p.add_mutually_exclusive_group(required=True)
    _file(what, "--model", "encrypted model: print a summary, --out writes the plain model")
    _file(what, "--predictions", "encrypted predictions: print the values")
    _file(what, "--history", "model or history file: print the decrypted losses")
    _out(p, "with --model: write the plain model here (mode 0600)", required=False)
    common.add_output_options(p)

    p = command(
        "make-switch-key",
        "owner: key-switching material from key A to key B",
        run_make_switch_key,
    )
    _file(p, "--from", "secret key A (secret.henn)", required=True, dest="source")
    _file(p, "--to", "secret key B (secret.henn)", required=True, dest="target")
    _out(p, "switching key file to write (public material)")
    common.add_output_options(p)

    p = command(
        "switch-key",
        "move an encrypted model to another key: without decrypting it (--switch-key), or "
        "by the owner's re-encryption (--secret and --public; the way for CKKS)",
        run_switch_key,
    )
    _file(p, "--model", "encrypted model under key A", required=True)
    _file(p, "--switch-key", "switching key A -> B (henn make-switch-key); no secret needed")
    _file(
        p,
        "--secret",
        "owner: secret key A of the model, to re-encrypt it under --public (schemes "
        "without a keyless switch, such as CKKS)",
    )
    _file(p, "--public", "owner: public key B to re-encrypt the model under (with --secret)")
    _out(p, "model under key B to write")
    p.add_argument(
        "--keep-history",
        action="store_true",
        help="keep (and switch) the training history; by default it is dropped, so the next "
        "party learns nothing about the previous party's training",
    )
    common.add_output_options(p, progress=True)

    p = command(
        "refresh",
        "owner: re-encrypt a model's weights (full noise budget)",
        run_refresh,
    )
    _file(p, "--secret", "secret key file", required=True)
    _file(p, "--model", "encrypted model", required=True)
    _out(
        p,
        "refreshed model to write",
        force="replace --out if it exists, even when it is the --model file",
    )
    _file(p, "--public", REENCRYPT_PUBLIC)
    common.add_output_options(p)

    p = command(
        "serve-refresh",
        "owner: answer parties' refresh requests in an exchange folder",
        run_serve_refresh,
    )
    _folder(
        p,
        "--exchange",
        "folder shared with the training party (created if missing)",
        required=True,
    )
    _file(p, "--secret", "secret key file (required unless --stop)")
    _file(p, "--public", REENCRYPT_PUBLIC)
    p.add_argument(
        "--idle-timeout",
        type=common.seconds,
        default=600.0,
        help="stop after this many seconds without requests (600)",
    )
    p.add_argument(
        "--timeout", type=common.seconds, default=None, help="stop after this many seconds in all"
    )
    p.add_argument(
        "--max-requests",
        type=common.positive_int,
        default=None,
        help="stop after this many requests",
    )
    p.add_argument(
        "--stop", action="store_true", help="ask the server running on --exchange to stop, and exit"
    )
    common.add_output_options(p, progress=True)

    p = command(
        "inspect",
        "verify a .henn file and show what it holds (no keys needed)",
        run_inspect,
    )
    p.add_argument("files", nargs="+", metavar="FILE", help=".henn files")
    common.add_output_options(p)


# ------------------------------------------------------------------------------------------
# commands
# ------------------------------------------------------------------------------------------
def run_keygen(args: argparse.Namespace) -> int:
    from hennframework.workflow.owner import generate_keys

    existing = [Path(args.out) / name for name in ("secret.henn", "public.henn")]
    if not args.force and any(path.exists() for path in existing):
        common.usage_error(
            _prog(args),
            f"--out {args.out} already holds keys; replacing them would leave every file "
            "encrypted under the old keys undecryptable. Choose another --out, or pass --force "
            "to replace them.",
        )
    model, batch_size = _keygen_model(args)
    if model is not None and not args.json and common.chosen(args)["scheme"] != "integer-vector":
        # the only long part (about 30 s for sentiment at n16384), said before it starts; the
        # integer-vector scheme refuses --for at once (its keys are the same for every model)
        print(
            f"henn keygen: trying one training step and one prediction of the model on random "
            f"batches of 1 to {batch_size} rows to find the rotation keys it needs...",
            file=sys.stderr,
            flush=True,
        )
    summary = generate_keys(
        args.out,
        **common.chosen(args),
        params=args.params,
        seed=args.seed,
        max_dim=args.max_dim,
        overwrite=args.force,
        for_model=model,
        batch_size=batch_size,
        rotation_keys=args.rotation_keys,
    )
    text = (
        f"key {summary['key_id']} ({summary['scheme']} / {summary['parameter_set']}, {summary['security']})\n"
        f"  secret key: {summary['secret']}  (mode 0600: keep it to yourself)\n"
        f"  public key: {summary['public']}  ({common.file_size(summary['public_bytes'])}; give this "
        "to the parties)\n"
    )
    if model is not None:
        text += f"  made for: {summary['made_for']}, batches of up to {batch_size}"
        if "rotations" in summary:
            text += f", rotation keys for steps {', '.join(map(str, summary['rotations']))}"
        text += "\n"
    text += (
        "  the key id is the public key's fingerprint: publish it where parties can check it "
        "(`henn inspect public.henn`)"
    )
    if args.seed is not None:
        text += "\n  seeded keys: reproducible, and known to anyone who knows the seed (tests only)"
    common.emit(args, summary, text)
    return 0


def _keygen_model(args: argparse.Namespace) -> tuple[Any, int | None]:
    """The plain model and batch size of ``keygen --for`` (None, None without it)."""
    from hennframework.nn import word_model_defaults
    from hennframework.workflow.owner import make_model

    if args.for_arch is None:
        for option, value in (
            ("--batch-size", args.batch_size),
            ("--vocabulary-size", args.vocabulary_size),
            ("--rotation-keys", args.rotation_keys),
        ):
            if value is not None:
                common.usage_error(_prog(args), f"{option} describes the model of --for; add --for")
        return None, None
    arch = args.for_arch
    if arch == "sentiment" and args.vocabulary_size is None:
        common.usage_error(_prog(args), "--for sentiment needs --vocabulary-size N")
    if args.batch_size is not None:
        batch_size: int | None = args.batch_size
    elif arch == "sentiment":  # the batch `henn train` uses by default under this scheme
        batch_size = word_model_defaults(common.chosen(args)["scheme"])[0]
    else:
        batch_size = {"xor": 4}.get(arch)
    if batch_size is None:
        common.usage_error(_prog(args), f"--for {arch} needs --batch-size (rows per training step)")
    model = make_model(arch, hidden=args.hidden, vocabulary_size=args.vocabulary_size)
    return model, batch_size


def run_encrypt_model(args: argparse.Namespace) -> int:
    from hennframework.data.text import Vocabulary
    from hennframework.io.bundles import load_model
    from hennframework.workflow.data import load_review_subset, vocabulary_from_reviews
    from hennframework.workflow.owner import encrypt_model, make_model

    backend = _backend(args)
    inputs = (("--public", args.public), ("--from", args.from_plain))
    _refuse_overwrite(args, "--out", args.out, inputs)
    if args.from_plain:
        model: Any = load_model(args.from_plain, kinds=("plain-model",))
    else:
        words: list[str] | None = None
        if args.vocabulary and args.vocabulary_from:
            raise _usage_error("give --vocabulary or --vocabulary-from, not both")
        if args.vocabulary:
            words = list(
                Vocabulary.from_json(Path(args.vocabulary).read_text(encoding="utf-8")).words
            )
        elif args.vocabulary_from:
            reading = data_options.text_settings(args)
            tokenizer, lowercase = reading.pop("tokenizer"), reading.pop("lowercase")
            reviews = load_review_subset(
                args.vocabulary_from, **reading, skip=args.skip, limit=args.limit
            )
            words = list(
                vocabulary_from_reviews(
                    reviews,
                    min_count=args.min_count,
                    polarity_cutoff=args.polarity_cutoff,
                    tokenizer=tokenizer,
                    lowercase=lowercase,
                ).words
            )
        if args.arch != "sentiment" and words is not None:
            raise _usage_error("--vocabulary/--vocabulary-from are for --arch sentiment only")
        if words is not None and (len(words) + 1) * args.hidden > common.max_weights():
            common.usage_error(
                _prog(args),
                f"--hidden {args.hidden} with a vocabulary of {len(words):,} words makes "
                f"{(len(words) + 1) * args.hidden:,} weights; at most {common.max_weights():,} "
                f"fit ({common.weights_cap_note()}). Lower --hidden or raise --min-count.",
            )
        plain = make_model(
            args.arch,
            seed=args.seed,
            activation=args.activation,
            init_scale=args.init_scale,
            hidden=args.hidden,
            vocabulary_size=len(words) if words is not None else None,
        )
        from hennframework.io.models import ModelBundle

        model = ModelBundle(plain, words)
    summary = encrypt_model(args.public, args.out, model, backend=backend)
    text = (
        f"encrypted {summary['architecture']} ({summary['parameters']} weights) under key "
        f"{summary['key_id']} -> {summary['model']}"
    )
    if not args.from_plain:
        summary["seeded_weights"] = args.seed is not None
        if args.seed is not None:
            text += (
                "\n  seeded initial weights: anyone who knows --seed can reproduce them "
                "(for reproducible experiments only)"
            )
    common.emit(args, summary, text)
    return 0


def _usage_error(message: str) -> Exception:
    from hennframework.exceptions import InputError

    return InputError(message)


def run_train(args: argparse.Namespace) -> int:
    from hennframework.nn import Progress
    from hennframework.workflow.party import train

    if args.history_out is not None and common.same_path(args.history_out, args.out):
        common.usage_error(
            _prog(args), "--history-out and --out name the same file; give each its own file."
        )
    inputs = (("--model", args.model), ("--public", args.public))
    _refuse_overwrite(args, "--out", args.out, inputs)
    _refuse_overwrite(args, "--history-out", args.history_out, inputs)
    bar = _bar(args, 0, "training")
    state = {"refreshes": 0}

    def progress(report: Progress) -> None:
        if bar.total != report.total:
            bar.total = report.total
        if report.note:
            state["refreshes"] += 1
            bar.set_postfix_str(report.note, refresh=True)
            return
        postfix = {"refreshes": state["refreshes"]}
        record = report.record
        if record is not None and record.noise_budget is not None:
            unit = "b" if report.budget_unit == "bits" else f" {report.budget_unit}"
            postfix["budget"] = f"{record.noise_budget:.0f}{unit}"  # type: ignore[assignment]
        bar.set_postfix(postfix, refresh=False)
        bar.update(report.done - bar.n)

    try:
        outcome, summary = train(
            args.model,
            args.public,
            _data(args),
            args.out,
            epochs=args.epochs,
            learning_rate=args.learning_rate,
            batch_size=args.batch_size,
            exchange=args.exchange,
            refresh_timeout=args.refresh_timeout,
            final_refresh=not args.no_final_refresh,
            resume=args.resume,
            max_steps=args.max_steps,
            log_every=args.log_every,
            absorb_noise=not args.track_noise,
            history_out=args.history_out,
            backend=_backend(args),
            progress=progress,
        )
    finally:
        bar.close()
    text = (
        f"{outcome.status}: {outcome.steps} steps here ({outcome.completed_steps}/{outcome.planned_steps} "
        f"of the plan), {outcome.refreshes} owner refreshes, {outcome.seconds:.1f} s "
        f"(batches of {summary['batch_size'] or 'all rows'}, learning rate "
        f"{summary['learning_rate']:g}) -> {summary['model']}"
    )
    from hennframework.nn.training import describe_absorbed

    absorbed = describe_absorbed(summary.get("absorbed_noise"))
    if absorbed:
        text += f"\n{absorbed}"
    if outcome.final_refresh == "done":
        text += "\nthe trained weights were refreshed once more by the owner: ready to predict"
    elif outcome.final_refresh:
        print(
            f"henn: warning: the final refresh {outcome.final_refresh}. The trained model is "
            f"saved to {summary['model']} as the last step left it; before predictions the owner "
            f"runs `henn refresh --secret SECRET.henn --model {summary['model']} --out "
            "FRESH.henn`.",
            file=sys.stderr,
        )
    if outcome.status == "refused":
        print(f"henn: training stopped: {outcome.message}", file=sys.stderr)
    elif outcome.status != "complete":
        print(
            f"henn: needs owner refresh: stopped after {outcome.completed_steps} of "
            f"{outcome.planned_steps} steps: {outcome.reason or outcome.message}. The model is "
            f"saved to {summary['model']} and still decryptable. The owner runs `henn refresh "
            f"--secret SECRET.henn --model {summary['model']} --out FRESH.henn`; then continue "
            "with `henn train --model FRESH.henn --resume` and the same data options (or train "
            "with --exchange DIR while the owner runs `henn serve-refresh`).",
            file=sys.stderr,
        )
    common.emit(args, summary, text)
    return 0 if outcome.status == "complete" else EXIT_NEEDS_REFRESH


def run_predict(args: argparse.Namespace) -> int:
    from hennframework.exceptions import InputError
    from hennframework.workflow.party import predict

    if args.public and not args.out:
        raise InputError("encrypted predictions must go to a file: pass --out FILE")
    _refuse_overwrite(args, "--out", args.out, (("--model", args.model), ("--public", args.public)))
    bar = _bar(args, 0, "predicting")

    def progress(done: int, rows: int) -> None:
        bar.total = rows
        bar.update(done - bar.n)

    try:
        summary = predict(
            args.model,
            args.public,
            _data(args),
            args.out,
            backend=_backend(args),
            progress=progress,
        )
    finally:
        bar.close()
    if summary["encrypted"]:
        text = f"{summary['rows']} encrypted predictions -> {summary.get('predictions_file')} (only the key owner can read them)"
    else:
        values = summary["predictions"]
        shown = ", ".join(f"{v:.4f}" for v in values[:10]) + (" ..." if len(values) > 10 else "")
        text = f"{len(values)} predictions: {shown}"
        if "accuracy" in summary:
            text += f"\naccuracy: {summary['accuracy']:.4f}"
    common.emit(args, summary, text)
    return 0


def run_decrypt(args: argparse.Namespace) -> int:
    from hennframework.exceptions import InputError
    from hennframework.workflow import owner

    backend = _backend(args)
    if args.out and not args.model:
        raise InputError("--out writes a plain model: use it with --model")
    _refuse_overwrite(args, "--out", args.out, (("--model", args.model), ("--secret", args.secret)))
    if args.model:
        _, summary = owner.decrypt_model(args.secret, args.model, args.out, backend=backend)
        lines = [
            f"{summary['architecture']}, key {summary['key_id']}: {summary['steps']} steps, "
            f"{summary['refreshes']} refreshes"
        ]
        if summary["final_loss"] is not None:
            lines.append(f"final loss {summary['final_loss']:.6f}")
        if "weights" in summary:
            lines.append(f"weights: {summary['weights']}")
        if args.out:
            lines.append(f"plain model (mode 0600) -> {args.out}")
        common.emit(args, summary, "\n".join(lines))
    elif args.predictions:
        summary = owner.decrypt_predictions(args.secret, args.predictions, backend=backend)
        common.emit(args, summary, "\n".join(f"{v:.6f}" for v in summary["predictions"]))
    else:
        summary = owner.decrypt_history(args.secret, args.history, backend=backend)
        lines = [
            f"{summary['steps']} steps, {summary['refreshes']} refreshes, {summary['samples']} samples"
        ]
        lines += [
            f"step {r['step']:>6}  loss "
            + ("(unreadable: noise too high)" if r["loss"] is None else f"{r['loss']:.6f}")
            for r in summary["records"]
        ]
        common.emit(args, summary, "\n".join(lines))
    return 0


def run_make_switch_key(args: argparse.Namespace) -> int:
    from hennframework.workflow.owner import make_switch_key

    _refuse_overwrite(args, "--out", args.out, (("--from", args.source), ("--to", args.target)))
    summary = make_switch_key(args.source, args.target, args.out, backend=_backend(args))
    common.emit(
        args,
        summary,
        f"switching key {summary['from_key_id']} -> {summary['to_key_id']} -> {summary['switch_key']}",
    )
    return 0


def run_switch_key(args: argparse.Namespace) -> int:
    from hennframework.workflow.owner import reencrypt_model
    from hennframework.workflow.party import switch_model

    owner_keys = args.secret is not None or args.public is not None
    if args.switch_key is not None and owner_keys:
        raise _usage_error(
            "pass either --switch-key (a keyless switch, no secret needed) or --secret and "
            "--public (the owner re-encrypts), not both"
        )
    if args.switch_key is None and (args.secret is None or args.public is None):
        raise _usage_error(
            "switch-key needs --switch-key FILE (from `henn make-switch-key`), or, for the owner "
            "(the way for CKKS), both --secret (the model's secret key) and --public (the new "
            "public key)"
        )
    inputs = (
        ("--model", args.model),
        ("--switch-key", args.switch_key),
        ("--secret", args.secret),
        ("--public", args.public),
    )
    _refuse_overwrite(args, "--out", args.out, inputs)
    bar = _bar(args, 0, "switching")

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    try:
        if args.switch_key is not None:
            summary = switch_model(
                args.model,
                args.switch_key,
                args.out,
                keep_history=args.keep_history,
                backend=_backend(args),
                progress=progress,
            )
            how = "without decrypting"
        else:
            summary = reencrypt_model(
                args.secret,
                args.public,
                args.model,
                args.out,
                keep_history=args.keep_history,
                backend=_backend(args),
                progress=progress,
            )
            how = "by re-encryption"
    finally:
        bar.close()
    common.emit(
        args,
        summary,
        f"model switched from key {summary['from_key_id']} to {summary['to_key_id']} "
        f"{how} -> {summary['model']}",
    )
    return 0


def run_refresh(args: argparse.Namespace) -> int:
    from hennframework.workflow.owner import refresh_model

    inputs = (("--model", args.model), ("--secret", args.secret), ("--public", args.public))
    _refuse_overwrite(args, "--out", args.out, inputs)
    summary = refresh_model(
        args.secret, args.model, args.out, public_path=args.public, backend=_backend(args)
    )
    common.emit(
        args,
        summary,
        f"refreshed (noise budget {summary['noise_budget_before']:.1f} -> "
        f"{summary['noise_budget_after']:.1f} {summary['noise_budget_unit']}) -> "
        f"{summary['model']}",
    )
    return 0


def run_serve_refresh(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from hennframework.exceptions import InputError
    from hennframework.io.bundles import load_public_key, load_secret_key
    from hennframework.workflow.exchange import request_stop, serve_refresh

    if args.stop:
        path = request_stop(args.exchange)
        common.emit(
            args,
            {"stop_requested": str(path)},
            f"asked the refresh server on {args.exchange} to stop",
        )
        return 0
    if not args.secret:
        raise InputError("serve-refresh needs --secret (the key holder's secret key file)")
    secret = load_secret_key(args.secret, backend=_backend(args))
    public = load_public_key(args.public, scheme=secret.scheme) if args.public else None
    bar = _bar(args, 0, f"serving refreshes for key {secret.key_id}")

    def on_request(summary: Any) -> None:
        bar.update(1)
        bar.set_postfix({"tensors": summary.tensors, "refused": summary.refused}, refresh=False)

    if not args.json:
        print(
            f"serving refreshes for key {secret.key_id} in {args.exchange} "
            f"(stop: henn serve-refresh --stop --exchange {args.exchange})",
            file=sys.stderr,
        )
    try:
        summary = serve_refresh(
            secret,
            args.exchange,
            public=public,
            idle_timeout=args.idle_timeout,
            timeout=args.timeout,
            max_requests=args.max_requests,
            on_request=on_request,
        )
    finally:
        bar.close()
    result = asdict(summary)
    common.emit(
        args,
        result,
        f"answered {summary.requests} requests ({summary.tensors} tensors refreshed, "
        f"{summary.refused} refused); stopped by {summary.stopped_by}",
    )
    return 0


def _verify_contents(path: str) -> str:
    """Load ``path`` with the loader of its kind, as a command that uses it would.

    Returns ``"ok"``, or ``"not verified (...)"`` when that needs something this process lacks
    (the scheme's plugin; for CKKS tensors, the key). A file the loader refuses raises its
    ``SerializationError``: ``henn inspect`` never calls a file good that the commands reject.
    """
    from hennframework.exceptions import HennError, InsecureParametersWarning, SerializationError
    from hennframework.io import bundles
    from hennframework.io.codecs import codec_for
    from hennframework.io.container import read_manifest

    manifest = read_manifest(path)
    kind, scheme = manifest["kind"], manifest["scheme"]
    if scheme is not None:
        try:
            codec_for(scheme)
        except SerializationError as exc:
            return f"not verified ({exc})"
    loaders: dict[str, Callable[[str], Any]] = {
        "public-key": bundles.load_public_key,
        "secret-key": bundles.load_secret_key,
        "switch-key": bundles.load_switch_key,
        "encrypted-model": bundles.load_model,
        "plain-model": bundles.load_model,
        "history": bundles.load_history,
        "predictions": bundles.load_predictions,
    }
    if kind == "refresh-response" and manifest["metadata"].get("status") == "error":
        if manifest["entries"]:
            raise SerializationError(f"{path}: an error response must not hold tensors.")
        return "ok"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", InsecureParametersWarning)  # not news here
            if kind in loaders:
                loaders[kind](path)
            else:
                bundles.load_ciphertexts(path, kind=kind)
    except SerializationError:
        raise
    except HennError as exc:
        return f"not verified ({' '.join(str(exc).split())})"
    return "ok"


def run_inspect(args: argparse.Namespace) -> int:
    from hennframework.workflow.owner import describe_file

    infos = []
    for path in args.files:
        contents = _verify_contents(path)  # before describe_file: it trusts what loaders check
        info = describe_file(path)
        info["contents"] = contents
        infos.append(info)
    lines = []
    for info in infos:
        line = f"{info['path']}: {info['kind']} (format v{info['format_version']}, checksum ok, contents {info['contents']}, {info['bytes']} bytes, mode {info['mode']})"
        if info.get("scheme"):
            line += f", {info['scheme']}/{info['parameter_set']}, key {info['key_id']}"
            if info.get("fingerprint_verified"):  # only when recomputed from the key itself
                line += " (fingerprint verified)"
            elif info.get("key_id"):
                line += " (as recorded; not verified)"
        if info.get("architecture"):
            line += f", {info['architecture']}"
        if info.get("fingerprint_covers"):
            line += f"\n  fingerprint covers: {', '.join(info['fingerprint_covers'])}"
            if info.get("not_covered"):
                line += f"; added later, not covered: {', '.join(info['not_covered'])}"
        elif info.get("fingerprint_note"):
            line += f"\n  {info['fingerprint_note']}"
        if info.get("public_material_bytes"):
            line += f"\n  public material: {common.file_size(info['public_material_bytes'])}"
        lines.append(line)
    common.emit(args, {"files": infos} if len(infos) > 1 else infos[0], "\n".join(lines))
    return 0
