"""Encrypted XOR training on the CKKS plugin, one seed per run (figures in docs/plugins-ckks.md).

Run: ``python plugins/ckks-tenseal/benchmarks/xor_seeds.py ITERATIONS LEARNING_RATE SEED [auto]``
(the docs use 300 0.5 0..9; ``auto``: the owner refreshes to the levels a step uses, plus one,
instead of the top level). Trains the 3-4-1 network (cubic Taylor sigmoid, the XOR demo's
initialisation) with encrypted weights on n16384, the owner refreshing the weights after every
step, then refreshes once more, predicts, decrypts, and prints one JSON line next to plaintext
training with the same initial weights.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
from hennframework.data.bundled import XOR_INPUTS, XOR_TARGETS
from hennframework.nn import Sequential

from hennframework_ckks import CKKSScheme, OwnerRefresher

X, Y = XOR_INPUTS, XOR_TARGETS


def main() -> None:
    iterations, learning_rate, seed = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
    scheme = CKKSScheme("n16384")
    keys = scheme.keygen()
    encrypted = Sequential.mlp([3, 4, 1], activation="taylor3", seed=seed, init_scale=4.0).encrypt(
        keys, scheme
    )
    plain = Sequential.mlp([3, 4, 1], activation="taylor3", seed=seed, init_scale=4.0)
    level = "auto" if sys.argv[4:] == ["auto"] else None
    refresher = OwnerRefresher(scheme, keys, level=level)
    started = time.perf_counter()
    history = encrypted.fit(X, Y, epochs=iterations, learning_rate=learning_rate, refresh=refresher)
    seconds = time.perf_counter() - started
    plain.fit(X, Y, epochs=iterations, learning_rate=learning_rate)
    # the weights leave the last step with 1-2 levels: refresh before predicting
    parameters = [p for p in encrypted.parameters() if p[2] is not None]
    for (index, name, _), fresh in zip(
        parameters, refresher([p[2] for p in parameters]), strict=True
    ):
        encrypted.layers[index].set_parameters({name: fresh})
    predicted = scheme.decrypt_tensor(encrypted.predict(X), keys.secret).ravel()
    reference = np.asarray(plain.predict(X)).ravel()
    print(
        json.dumps(
            {
                "seed": seed,
                "refresh_level": level or "top",
                "seconds_per_iteration": round(seconds / iterations, 3),
                "refreshes": history.refreshes,
                "owner_ms_per_refresh": round(
                    1000 * refresher.seconds / max(refresher.calls, 1), 1
                ),
                "encrypted_predictions": [round(float(v), 3) for v in predicted],
                "plain_predictions": [round(float(v), 3) for v in reference],
                "encrypted_learned": bool((np.round(predicted) == Y.ravel()).all()),
                "plain_learned": bool((np.round(reference) == Y.ravel()).all()),
            }
        )
    )


if __name__ == "__main__":
    main()
