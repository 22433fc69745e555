"""Encrypted FedAvg: the weighted mean of the parties' encrypted weights, without decrypting them.

``mean = sum_i (n_i / N) w_i`` with ``n_i`` a party's sample count and ``N = sum_i n_i``: one
plaintext scalar product per party and tensor, then additions, nothing else, so any scheme with
ADD and MUL_PLAIN aggregates. The weight ``n_i / N`` is a real number; it goes through
:func:`hennframework.nn.ops.multiply_constant`, which in the integer-vector scheme encodes it at
the fine scale ``f**2`` and rescales (exact up to that fixed-point rounding: a relative error of
at most ``2**-24`` per weight with the ``default`` set, and a rounding noise the scheme tracks).
The schemes refuse rather than wrap: an aggregate that could leave the exact range raises
:class:`~hennframework.exceptions.OverflowRiskError`, one whose noise could corrupt it decrypts to
:class:`~hennframework.exceptions.NoiseBudgetExhaustedError`, never to a wrong number.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hennframework.exceptions import InputError, KeyMismatchError
from hennframework.nn.ops import is_encrypted, multiply_constant

__all__ = ["fedavg", "fedavg_weights"]


def fedavg_weights(counts: Sequence[int]) -> list[float]:
    """``n_i / N`` for the parties' sample counts (each a positive integer)."""
    if not counts:
        raise InputError("no party reported an update: nothing to aggregate.")
    for count in counts:
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise InputError(
                f"a party reported {count!r} samples; FedAvg weighs updates by positive sample counts."
            )
    total = sum(counts)
    return [count / total for count in counts]


def fedavg(updates: Sequence[Sequence[Any]], counts: Sequence[int]) -> list[Any]:
    """The sample-weighted mean of the parties' encrypted tensors, tensor by tensor.

    ``updates[i]`` is party i's list of tensors (same shapes, same key for every party).
    """
    weights = fedavg_weights(counts)
    if len(updates) != len(weights):
        raise InputError(f"{len(updates)} updates but {len(weights)} sample counts.")
    first = updates[0]
    key_ids: set[str] = set()
    for index, update in enumerate(updates):
        if len(update) != len(first):
            raise InputError(
                f"party {index} sent {len(update)} tensors, party 0 sent {len(first)}; all parties "
                "must train the same model."
            )
        for tensor, reference in zip(update, first, strict=True):
            if not is_encrypted(tensor):
                raise InputError("a party sent a plaintext tensor; updates must stay encrypted.")
            if tuple(tensor.shape) != tuple(reference.shape):
                raise InputError(
                    f"party {index} sent a tensor of shape {tuple(tensor.shape)} where party 0 "
                    f"sent {tuple(reference.shape)}; all parties must train the same model."
                )
            key_id = getattr(tensor, "key_id", None)
            if isinstance(key_id, str):
                key_ids.add(key_id)
    if len(key_ids) > 1:
        raise KeyMismatchError(
            f"the updates are under different keys ({', '.join(sorted(key_ids))}); every party "
            "must train under the owner's one public key."
        )
    mean: list[Any] = []
    for position in range(len(first)):
        total: Any = None
        for update, weight in zip(updates, weights, strict=True):
            term = multiply_constant(update[position], weight)
            total = term if total is None else total + term
        mean.append(total)
    return mean
