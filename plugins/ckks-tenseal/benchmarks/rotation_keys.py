"""What fewer rotation keys cost a sentiment training step on the CKKS plugin (docs/plugins-ckks.md).

Run: ``python plugins/ckks-tenseal/benchmarks/rotation_keys.py [ROUNDS]`` (the docs use 5). Makes
the keys ``henn keygen --for sentiment`` makes (its parameter set, ``n16384-9``, and as many
rotation keys as keep the public material within 64 MB, 7, chosen for the model) and keys with
every power of two on the same set, then times one training step of the bag-of-words network (8
hidden units, lsq3, batches of 256 real rt-polarity reviews, from fresh weights) with each key
set, the two interleaved, ``ROUNDS`` times on different batches. Prints the chosen steps, the
times and the ratio of the medians.
"""

from __future__ import annotations

import copy
import statistics
import sys
import time

from hennframework.demos.sentiment import SentimentSettings, prepare
from hennframework.nn import Sequential
from hennframework.workflow.owner import keygen_options_for_model, scheme_for_model

from hennframework_ckks import CKKSScheme


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    data = prepare(SentimentSettings(batch_size=256))
    plain = Sequential.bag_of_words(data.vocabulary_size, 8, activation="lsq3", seed=0)
    scheme = scheme_for_model(CKKSScheme("n16384"), plain, 256)
    options = keygen_options_for_model(scheme, plain, 256)
    print(
        f"henn keygen --for sentiment makes keys at {scheme.params.name} with rotation keys "
        f"for steps {options['rotations']}"
    )
    key_sets = {
        "every power of two (13 keys)": scheme.keygen(),
        "made for the model": scheme.keygen(**options),
    }
    times: dict[str, list[float]] = {name: [] for name in key_sets}
    for index in range(rounds):
        batch = data.train[index % len(data.train)]
        for name, keys in key_sets.items():
            model = copy.deepcopy(plain).encrypt(keys, scheme)
            started = time.perf_counter()
            model.train_step(batch, 0.05)
            times[name].append(time.perf_counter() - started)
    for name, values in times.items():
        rounded = ", ".join(f"{value:.2f}" for value in values)
        print(f"{name}: median {statistics.median(values):.2f} s per step ({rounded})")
    full, chosen = (statistics.median(values) for values in times.values())
    print(f"ratio (made for the model / every power of two): {chosen / full:.3f}")


if __name__ == "__main__":
    main()
