"""Owner-assisted refresh: fresh encryptions of the same values when the levels run out.

CKKS on SEAL has no bootstrapping, so a ciphertext can go through ``L`` rescales and no more.
Training a network on encrypted weights uses about ``L`` levels per step (11 for the XOR
network), so after each step the weights go back to the key holder ("owner"):

1. the party sends the ciphertexts (a :mod:`~hennframework_ckks.serialization` container);
2. the owner decrypts them and encrypts the values again, in the same packing, with the levels
   the party's steps use (:class:`OwnerRefresher`, ``level="auto"``; the top on a first round);
3. the party continues with the fresh ciphertexts.

What each side learns: the party receives ciphertexts only (semantically secure under RLWE), so
it learns nothing new. The owner learns the decrypted values of whatever is sent: here its own
model's current weights, which it may see anyway (it holds the key that encrypts them); weights
depend on the party's training data in aggregate, as any trained model does. Never refresh
activations or gradients this way: they would reveal the party's data to the owner. Decrypted
values never go back to the party (CKKS decryptions can leak the secret key, Li and Micciancio
2021), only fresh encryptions.

A refresh provider is any callable ``provider(list_of_tensors) -> list_of_fresh_tensors`` (the
:class:`RefreshProvider` protocol). The re-encryption itself is
:func:`~hennframework_ckks.tensor.refresh_tensors` (also behind ``CKKSScheme.refresh``). This
module has three providers:

* :class:`OwnerRefresher` (in-process, for demos and tests; counts calls and tensors);
* :class:`FileRefresher` (party side) and :class:`FileRefreshOwner` (owner side) for two
  processes sharing a directory. They are hennframework's own refresh exchange
  (:mod:`hennframework.workflow.exchange`, protocol ``hennframework-refresh/1``: ``.henn``
  request and response files, safe against links, FIFOs and other files planted in the shared
  folder) with this module's re-encryption, which keeps each tensor's slot packing.
  ``python -m hennframework_ckks.refresh serve DIR --secret-key FILE`` runs the owner;
  ``henn --scheme ckks serve-refresh`` serves the same folder too, through the scheme's own
  provider (``CKKSScheme.owner_refresher``): the same packing and levels.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from hennframework.io.codecs import codec_for
from hennframework.io.container import DEFAULT_LIMITS
from hennframework.io.safe_files import open_for_reading
from hennframework.plugin import HennError, InputError, KeySet

from hennframework_ckks.keys import CKKSPublicKey, CKKSSecretKey
from hennframework_ckks.shared import SCHEME_NAME, scheme_for
from hennframework_ckks.tensor import Deferred, magnitude_limit, refresh_tensors

if TYPE_CHECKING:
    from hennframework.workflow.exchange import ServeSummary

__all__ = [
    "FileRefreshOwner",
    "FileRefresher",
    "OwnerRefresher",
    "RefreshProvider",
    "training_refresher",
]


@runtime_checkable
class RefreshProvider(Protocol):
    """Given encrypted tensors, return fresh encryptions of the same values (same order, shapes)."""

    def __call__(self, tensors: list[Any]) -> list[Any]: ...


class OwnerRefresher:
    """In-process refresh by the key holder (demos, tests): ``refresher(tensors)``.

    ``calls`` counts refresh rounds, ``tensors`` the tensors and ``ciphertexts`` the ciphertexts
    refreshed, ``seconds`` the time spent.

    ``level``: None (default) refreshes to the top level; an int refreshes to that level;
    ``"auto"`` refreshes to the levels the previous round actually consumed plus ``margin``
    (the first round counts from the top level, where the tensors were encrypted at most; tensors
    still at the top go back there). Fewer levels make every operation of the next step
    cheaper (key switching costs about the square of the level). The margin is for value
    range, not depth: level 0 holds the smallest values (``params.headroom``), so a step that
    ends there may be refused for magnitude where one level more would hold it. A step that
    needs more than it got is refused ("needs refresh" or a magnitude refusal), never computed
    wrong; tensors that come back unused (the step was refused, so nothing was consumed) go to
    the top, so the training loop's refresh-and-retry succeeds, and ``margin`` grows by one
    for the rounds after: a model whose steps need the margin pays for one refused step, not
    one per refresh. ``margin`` is the current value, after any growth. A round also gives
    more than ``margin`` levels where the tensors' values (their tracked bounds) already reach
    half of what the level the next step lands on holds.
    """

    def __init__(
        self,
        scheme: Any,
        keys: KeySet | CKKSSecretKey,
        *,
        level: int | str | None = None,
        margin: int = 1,
    ) -> None:
        self.scheme = scheme
        self.secret = keys.secret if isinstance(keys, KeySet) else keys
        if not isinstance(self.secret, CKKSSecretKey):
            raise InputError("OwnerRefresher needs the CKKS key set (with the secret key)")
        if not (level is None or level == "auto" or isinstance(level, int)):
            raise InputError("level must be None, an int or 'auto'")
        if isinstance(margin, bool) or not isinstance(margin, int) or margin < 0:
            raise InputError(f"margin must be a whole number of levels >= 0, got {margin!r}")
        self.level = level
        self.margin = margin
        self.calls = 0
        self.tensors = 0
        self.ciphertexts = 0
        self.seconds = 0.0
        self._issued: int | None = None

    def _target_level(self, tensors: list[Any]) -> int | None:
        top = int(self.secret.public.context.top_level)
        if self.level is None:
            return None
        if isinstance(self.level, int):
            return min(max(self.level, 0), top)
        left = min(int(t.levels_left) for t in tensors)
        if self._issued is None:
            # the first round: the tensors were encrypted at the top level at most, so the levels
            # below the top bound what the step used (from above: never too few)
            if left >= top:
                return None
            consumed = top - left
        else:
            consumed = self._issued - left
        if consumed <= 0:  # unused since the last round: a refused step, retried on the top
            self.margin = min(self.margin + 1, top)  # and the next rounds keep a level more
            return None
        # Given ``consumed + extra`` levels, a next step as deep as this one ends at level
        # ``extra``. Values already reaching half of what that level holds (bounds grow from
        # step to step) would likely be refused there, wasting a step: give a level more.
        ctx = self.secret.public.context
        scale = float(self.secret.public.params.scale)
        bound = max((float(t.magnitude_bound) for t in tensors), default=0.0)
        extra = self.margin
        while consumed + extra < top and not 2.0 * bound < magnitude_limit(ctx, extra, scale):
            extra += 1
        return min(top, consumed + extra)

    def __call__(self, tensors: list[Any]) -> list[Any]:
        if not tensors:  # nothing to refresh: no round, nothing learnt
            return []
        started = time.perf_counter()
        level = self._target_level(tensors)
        fresh = refresh_tensors(self.secret, tensors, level)
        self._issued = min(t.levels_left for t in fresh)
        self.calls += 1
        self.tensors += len(fresh)
        self.ciphertexts += sum(t.ciphertext_count for t in fresh)
        self.seconds += time.perf_counter() - started
        return list(fresh)


def training_refresher(scheme: Any, keys: KeySet | CKKSSecretKey) -> OwnerRefresher:
    """The refresher every owner-side path of training uses (in-process through
    ``CKKSScheme.owner_refresher``, and the file exchange's owners): ``level="auto"`` from a
    margin of 0, growing where values or a refused step ask for it (see :class:`OwnerRefresher`)."""
    return OwnerRefresher(scheme, keys, level="auto", margin=0)


def _remember(key: CKKSPublicKey) -> None:
    """Have the plugin's codec read files under ``key``. The codec is looked up by name, not
    imported: the codec module imports the scheme module, which imports this one."""
    codec: Any = codec_for(SCHEME_NAME)
    codec.remember(key)


class FileRefresher:
    """Party side of the file exchange: ``FileRefresher(directory, public_key)(tensors)``.

    Writes ``<id>.request.henn`` into ``directory`` and waits (up to ``timeout`` seconds) for the
    owner's ``<id>.response.henn`` (:class:`hennframework.workflow.exchange.FileRefresher`).
    Raises :class:`~hennframework.exceptions.NoiseBudgetExhaustedError` when no answer comes in
    time and :class:`~hennframework.exceptions.KeyMismatchError` when the owner refuses. Counts
    ``calls`` like :class:`OwnerRefresher`.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        public_key: CKKSPublicKey | KeySet,
        *,
        timeout: float = 600.0,
        poll: float = 0.02,
    ) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        key = public_key.public if isinstance(public_key, KeySet) else public_key
        if not isinstance(key, CKKSPublicKey):
            raise InputError("FileRefresher needs the CKKS public key")
        # the exchange is needed by file refreshers only: imported on first use, not with the plugin
        from hennframework.workflow.exchange import FileRefresher as ExchangeRefresher

        _remember(key)  # responses are read back under this key
        self.public_key = key
        self.timeout = timeout
        self.poll = poll
        self._exchange = ExchangeRefresher(
            self.directory,
            scheme=scheme_for(key.params),
            key_id=key.key_id,
            timeout=timeout,
            poll=poll,
        )
        self.calls = 0
        self.tensors = 0
        self.seconds = 0.0

    def __call__(self, tensors: list[Any]) -> list[Any]:
        started = time.perf_counter()
        items = [t.materialize() if isinstance(t, Deferred) else t for t in tensors]
        fresh = self._exchange(items)
        self.calls += 1
        self.tensors += len(fresh)
        self.seconds += time.perf_counter() - started
        return list(fresh)


class FileRefreshOwner:
    """Owner side of the file exchange: answers ``*.request.henn`` files in a directory.

    A :class:`hennframework.workflow.exchange.RefreshServer` that re-encrypts through
    :func:`training_refresher`, as in-process training does: the packing of each tensor is
    kept, and the party gets the levels its last step used.
    """

    def __init__(self, directory: str | os.PathLike[str], secret: CKKSSecretKey | KeySet) -> None:
        self.directory = Path(directory)
        key = secret.secret if isinstance(secret, KeySet) else secret
        if not isinstance(key, CKKSSecretKey):
            raise InputError("FileRefreshOwner needs the CKKS secret key")
        from hennframework.workflow.exchange import RefreshServer  # (see FileRefresher)

        _remember(key.public)  # requests are read under the owner's key
        self.secret = key
        self._provider = training_refresher(scheme_for(key.params), key)
        self.refreshes = 0
        self.tensors = 0
        self.seconds = 0.0
        self.server = RefreshServer(
            self.directory,
            scheme=scheme_for(key.params),
            key_id=key.key_id,
            refresh=self._refresh,
        )

    def _refresh(self, tensors: list[Any]) -> list[Any]:
        started = time.perf_counter()
        fresh = self._provider(tensors)
        self.refreshes += 1
        self.tensors += len(fresh)
        self.seconds += time.perf_counter() - started
        return list(fresh)

    @property
    def summary(self) -> ServeSummary:
        """Requests answered and refused, skipped folder entries, errors (see ServeSummary)."""
        return self.server.summary

    def serve_pending(self) -> int:
        """Answer every request present now; returns how many were refreshed."""
        return self.server.serve_pending()

    def serve(
        self, *, count: int | None = None, timeout: float | None = None, poll: float = 0.02
    ) -> int:
        """Answer requests until ``count`` were answered, ``timeout`` passed or ``STOP`` appears."""
        self.server.serve(idle_timeout=None, timeout=timeout, max_requests=count, poll=poll)
        return self.refreshes


def _load_secret(path: str) -> CKKSSecretKey:
    """A secret key from a ``.henn`` file (``henn keygen``) or from ``CKKSSecretKey.to_bytes()``."""
    limit = DEFAULT_LIMITS.max_file_bytes
    with open_for_reading(path, max_bytes=limit, what="secret key file") as (handle, size):
        head = handle.read(4)
        data = None if head == b"PK\x03\x04" else head + handle.read(size - len(head))
    if data is not None:
        return CKKSSecretKey.from_bytes(data)
    from hennframework.io.bundles import load_secret_key

    key = load_secret_key(path).key
    if not isinstance(key, CKKSSecretKey):
        raise InputError(f"{path} is not a CKKS secret key; pass the key of the CKKS key set.")
    return key


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m hennframework_ckks.refresh serve DIR --secret-key FILE [--count N]``."""
    parser = argparse.ArgumentParser(prog="python -m hennframework_ckks.refresh")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="answer refresh requests in a directory (key holder)")
    serve.add_argument("directory")
    serve.add_argument(
        "--secret-key", required=True, help="secret.henn, or a file from CKKSSecretKey.to_bytes()"
    )
    serve.add_argument("--count", type=int, default=None, help="stop after this many refreshes")
    serve.add_argument("--timeout", type=float, default=None, help="stop after this many seconds")
    args = parser.parse_args(argv)
    try:
        owner = FileRefreshOwner(args.directory, _load_secret(args.secret_key))
        done = owner.serve(count=args.count, timeout=args.timeout)
    except HennError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 1
    print(f"answered {done} refresh request(s), {owner.tensors} tensor(s), {owner.seconds:.3f} s")
    return 0


if __name__ == "__main__":  # pragma: no cover - exercised by the two-process test
    sys.exit(main())
