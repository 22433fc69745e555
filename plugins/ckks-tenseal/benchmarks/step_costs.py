"""Where the time of an encrypted training step goes, next to TenSEAL's own product time.

Run: ``python plugins/ckks-tenseal/benchmarks/step_costs.py [xor|sentiment|ops|reference] ...``
(one process; SEAL is single-threaded). Prints one JSON line per measurement:

* ``reference``: TenSEAL's ``CKKSVector`` product (multiply + relinearise + rescale) at
  N = 16384, coefficient moduli [60, 40, 40, 40, 40, 60], scale 2**40: the yardstick the XOR
  step time is compared with (measure it in the same run as the step);
* ``ops [SET ...]``: key switching (rotation, relinearisation) and rescaling at every level of
  a parameter set, the costs a step at that ring size is made of;
* ``xor [--params SET] [--iterations N] [--level auto|top] [--margin M] [--seed S]``: milliseconds per
  iteration of the encrypted XOR network (3-4-1, cubic Taylor sigmoid, learning rate 0.5),
  owner refreshes included, and the number of SEAL operations of one step by kind and level;
* ``sentiment [--batch-size B] [--steps S]``: seconds per step of the bag-of-words network on
  rt-polarity (8 hidden units, lsq3, rate 0.025) with the model's parameter set and rotation
  keys (as ``henn keygen --for sentiment`` makes them: ``n16384-9``, 7 keys chosen for the
  model's rotations), the owner
  refreshing to the levels a step uses, and where a step's time goes: the SEAL operations by
  kind (count and seconds) and the plaintext encodings (the linear maps' diagonals);
* ``small-ring [--iterations N]``: what the XOR step would cost on the smallest 128-bit ring
  (``n4096``: one level) if every intermediate were refreshed in-process after each product,
  from this run's costs of its parts at ``n4096`` (key switch, plaintext product with rescale,
  refresh of one ciphertext) and the number of each in the XOR step at ``n16384``; next to the
  step measured at ``n16384`` and TenSEAL's product, all in this run. A lower bound: the
  framework's own work and the refreshes' slot layouts are left out.

Medians after a warm-up; numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import collections
import json
import statistics
import time
from typing import Any

import numpy as np
from hennframework.data.bundled import XOR_INPUTS, XOR_TARGETS
from measure import timed  # this folder's measurement helper (run as a script)

X, Y = XOR_INPUTS, XOR_TARGETS


def reference(repeat: int) -> dict[str, Any]:
    """TenSEAL's ciphertext product at N = 16384, [60, 40, 40, 40, 40, 60]."""
    import tenseal as ts

    context = ts.context(ts.SCHEME_TYPE.CKKS, 16384, coeff_mod_bit_sizes=[60, 40, 40, 40, 40, 60])
    context.global_scale = 2.0**40
    context.generate_relin_keys()
    rng = np.random.default_rng(0)
    a = ts.ckks_vector(context, rng.uniform(-1, 1, 8192).tolist())
    b = ts.ckks_vector(context, rng.uniform(-1, 1, 8192).tolist())
    return {
        "what": "tenseal product N=16384 [60,40,40,40,40,60]",
        "ms": timed(lambda: a * b, repeat),
    }


def ops(name: str, repeat: int) -> list[dict[str, Any]]:
    """Rotation, relinearisation and rescale times at every level of parameter set ``name``."""
    from hennframework_ckks import CKKSScheme

    scheme = CKKSScheme(name)
    keys = scheme.keygen(rotations=[1])
    ctx = keys.public.context
    w = scheme.encrypt_tensor(np.linspace(-1, 1, 16), keys.public)
    ct = w.ciphertexts[0]
    rows = []
    for level in range(ctx.top_level, 0, -1):
        low = ctx.mod_to(ct, level)
        product = ctx.multiply(low, low, keys.public.relin_keys)
        relin = timed(lambda p=product: ctx.relin(p, keys.public.relin_keys), repeat)
        rotate = timed(
            lambda c=low: ctx.rotate(c, 1, keys.public.galois_keys, frozenset({1}), None), repeat
        )
        settled = ctx.relin(product, keys.public.relin_keys)
        rescale = timed(lambda s=settled: ctx.settle(s, keys.public.relin_keys), repeat)
        rows.append(
            {
                "params": name,
                "level": level,
                "relin_ms": relin,
                "rotate_ms": rotate,
                "rescale_ms": rescale,
            }
        )
    return rows


class _Counting:
    """Wraps a SEAL object (the evaluator, the encoder): counts and times each call by (name,
    level of its first argument, -1 for none)."""

    def __init__(self, wrapped: Any) -> None:
        self.wrapped = wrapped
        self.counts: collections.Counter[tuple[str, int]] = collections.Counter()
        self.seconds: collections.Counter[str] = collections.Counter()

    def __getattr__(self, name: str) -> Any:
        function = getattr(self.wrapped, name)

        def counted(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            result = function(*args, **kwargs)
            self.seconds[name] += time.perf_counter() - started
            first = args[0] if args else None
            level = (
                int(first.coeff_modulus_size()) - 1 if hasattr(first, "coeff_modulus_size") else -1
            )
            self.counts[(name, level)] += 1
            return result

        return counted

    def by_kind(self) -> dict[str, int]:
        """Calls per operation name, all levels together."""
        totals: collections.Counter[str] = collections.Counter()
        for (name, _), count in self.counts.items():
            totals[name] += count
        return dict(totals)


def xor(params: str, iterations: int, level: str, seed: int, margin: int = 1) -> dict[str, Any]:
    """Milliseconds per XOR iteration (refreshes included) and one step's SEAL operations."""
    from hennframework.nn import Sequential

    from hennframework_ckks import CKKSScheme, OwnerRefresher

    scheme = CKKSScheme(params)
    keys = scheme.keygen()
    model = Sequential.mlp([3, 4, 1], activation="taylor3", seed=seed, init_scale=4.0)
    encrypted = model.encrypt(keys, scheme)
    refresher = OwnerRefresher(
        scheme, keys, level="auto" if level == "auto" else None, margin=margin
    )
    encrypted.fit(X, Y, epochs=2, learning_rate=0.5, refresh=refresher)  # warm-up
    ctx = keys.public.context
    counting = _Counting(ctx.evaluator)
    ctx.evaluator = counting
    try:
        encrypted.fit(X, Y, epochs=1, learning_rate=0.5, refresh=refresher)
    finally:
        ctx.evaluator = counting.wrapped
    calls, owner_seconds = refresher.calls, refresher.seconds
    started = time.perf_counter()
    history = encrypted.fit(X, Y, epochs=iterations, learning_rate=0.5, refresh=refresher)
    seconds = time.perf_counter() - started
    return {
        "what": "xor step",
        "params": params,
        "refresh_level": level,
        "margin": margin,
        "ms_per_iteration": 1000 * seconds / iterations,
        "refreshes": history.refreshes,
        "owner_ms_per_refresh": 1000
        * (refresher.seconds - owner_seconds)
        / max(refresher.calls - calls, 1),
        "ops_per_step": counting.by_kind(),
        "seal_ms_per_step": {k: round(1000 * v, 1) for k, v in counting.seconds.items()},
        "key_switch_levels": sorted(
            (level_, name, count)
            for (name, level_), count in counting.counts.items()
            if name in ("relinearize", "rotate_vector")
        ),
    }


def sentiment(batch_size: int, steps: int) -> dict[str, Any]:
    """Seconds per sentiment step and the SEAL operations and encodings of the last one."""
    from hennframework.demos.sentiment import SentimentSettings, prepare
    from hennframework.nn import OwnerRefresher, Sequential
    from hennframework.workflow.owner import keygen_options_for_model, scheme_for_model

    from hennframework_ckks import CKKSScheme

    data = prepare(SentimentSettings(batch_size=batch_size))
    model = Sequential.bag_of_words(data.vocabulary_size, 8, activation="lsq3", seed=0)
    scheme = scheme_for_model(CKKSScheme("n16384"), model, batch_size)
    options = keygen_options_for_model(scheme, model, batch_size)
    keys = scheme.keygen(**options)
    encrypted = model.encrypt(keys, scheme)
    refresher = OwnerRefresher(scheme, keys)
    encrypted.fit(data.train[:2], learning_rate=0.025, refresh=refresher)  # warm-up, refreshes
    ctx = keys.public.context
    seconds = []
    counting, encoder = _Counting(ctx.evaluator), _Counting(ctx.encoder)
    for batch in data.train[2 : 2 + steps]:  # the counts kept are the last step's
        counting, encoder = _Counting(ctx.evaluator), _Counting(ctx.encoder)
        ctx.evaluator, ctx.encoder = counting, encoder
        try:
            started = time.perf_counter()
            encrypted.fit([batch], learning_rate=0.025, refresh=refresher)
            seconds.append(time.perf_counter() - started)
        finally:
            ctx.evaluator, ctx.encoder = counting.wrapped, encoder.wrapped
    median = statistics.median(seconds)
    return {
        "what": "sentiment step",
        "params": scheme.params.name,
        "batch_size": batch_size,
        "rotation_keys": options["rotations"],
        "seconds_per_step": median,
        "reviews_per_second": batch_size / median,
        "ops_per_step": counting.by_kind(),
        "seal_seconds_per_step": {k: round(v, 3) for k, v in counting.seconds.items()},
        "encodings_per_step": sum(encoder.counts.values()),
        "encoding_seconds_per_step": round(sum(encoder.seconds.values()), 3),
    }


def small_ring(iterations: int, repeat: int) -> list[dict[str, Any]]:
    """The in-process small-ring estimate for the XOR step (see the module docstring)."""
    from hennframework_ckks import CKKSScheme

    scheme = CKKSScheme("n4096")
    keys = scheme.keygen(rotations=[1])
    ctx, public = keys.public.context, keys.public
    tensor = scheme.encrypt_tensor(np.linspace(-1, 1, 16), public)
    ct = tensor.ciphertexts[0]
    product = ctx.relin(ctx.multiply(ct, ct, public.relin_keys), public.relin_keys)
    parts = {
        "multiply_relin_ms": timed(
            lambda: ctx.relin(ctx.multiply(ct, ct, None), public.relin_keys), repeat
        ),
        "rotate_ms": timed(
            lambda: ctx.rotate(ct, 1, public.galois_keys, frozenset({1}), None), repeat
        ),
        "rescale_ms": timed(lambda: ctx.settle(product, public.relin_keys), repeat),
        "plain_product_ms": timed(
            lambda: ctx.multiply_plain(ct, 0.5, ct.scale, public.relin_keys), repeat
        ),
        "refresh_ms": timed(lambda: scheme.refresh(tensor, keys), repeat),
    }
    step = xor("n16384", iterations, "auto", 0)
    ops = step["ops_per_step"]
    switches = ops.get("relinearize", 0) + ops.get("rotate_vector", 0)
    products = ops.get("multiply", 0) + ops.get("square", 0)
    consuming = products + ops.get("multiply_plain", 0)  # one level each: one refresh each
    key_switch = max(parts["multiply_relin_ms"], parts["rotate_ms"])
    estimate = (
        switches * key_switch
        + consuming * (parts["rescale_ms"] + parts["refresh_ms"])
        + ops.get("multiply_plain", 0) * parts["plain_product_ms"]
    )
    product_ms = reference(repeat)["ms"]
    return [
        {"what": "n4096 parts", "params": scheme.params.describe(), **parts},
        {
            "what": "xor step on n4096, refreshed after every product (estimate, lower bound)",
            "key_switches": switches,
            "level_consuming_ops": consuming,
            "estimate_ms": estimate,
            "measured_n16384_ms": step["ms_per_iteration"],
            "tenseal_product_ms": product_ms,
            "estimate_in_products": estimate / product_ms,
        },
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=("xor", "sentiment", "ops", "reference", "small-ring"))
    parser.add_argument("sets", nargs="*", default=["n8192", "n16384"])
    parser.add_argument("--params", default="n16384")
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--level", choices=("top", "auto"), default="top")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--margin", type=int, default=1, help="levels above what a step used")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=256, help="sentiment: reviews a step")
    parser.add_argument("--steps", type=int, default=3, help="sentiment: steps timed")
    args = parser.parse_args()
    if args.what == "reference":
        print(json.dumps(reference(args.repeat)))
    elif args.what == "ops":
        for name in args.sets:
            for row in ops(name, args.repeat):
                print(json.dumps(row))
    elif args.what == "sentiment":
        print(json.dumps(sentiment(args.batch_size, args.steps)))
    elif args.what == "small-ring":
        for row in small_ring(args.iterations, args.repeat):
            print(json.dumps(row))
    else:
        print(json.dumps(xor(args.params, args.iterations, args.level, args.seed, args.margin)))


if __name__ == "__main__":
    main()
