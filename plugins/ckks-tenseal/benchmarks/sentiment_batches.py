"""Encrypted sentiment training speed against batch size on the CKKS plugin (docs/plugins-ckks.md).

Run: ``python plugins/ckks-tenseal/benchmarks/sentiment_batches.py [PARAMS] [BATCH ...]`` (the
docs use ``n16384 32 128 512 1024``). For each batch size: the bundled rt-polarity split and
vocabulary as ``henn demo sentiment`` makes them, the bag-of-words network (8 hidden units, lsq3)
encrypted, one warm-up batch, then two batches timed with the owner refreshing in-process as
training asks; prints one JSON line per batch size. The step's cost grows far slower than its
batch (the batch shares the slots of a few ciphertexts), which is why ``henn demo sentiment
--scheme ckks`` trains in batches of 256.
"""

from __future__ import annotations

import copy
import json
import sys
import time

from hennframework.demos.sentiment import SentimentSettings, prepare
from hennframework.nn import Sequential

from hennframework_ckks import CKKSScheme, OwnerRefresher


def main() -> None:
    params = sys.argv[1] if len(sys.argv) > 1 else "n16384"
    batches = [int(value) for value in sys.argv[2:]] or [32, 128, 512]
    scheme = CKKSScheme(params)
    keys = scheme.keygen()
    for batch_size in batches:
        data = prepare(SentimentSettings(batch_size=batch_size))
        plain = Sequential.bag_of_words(data.vocabulary_size, 8, activation="lsq3", seed=0)
        model = copy.deepcopy(plain).encrypt(keys, scheme)
        refresher = OwnerRefresher(scheme, keys)
        model.fit(data.train[:1], learning_rate=0.05, refresh=refresher)  # warm-up
        started = time.perf_counter()
        model.fit(data.train[1:3], learning_rate=0.05, refresh=refresher)
        seconds = time.perf_counter() - started
        reviews = sum(batch.size for batch in data.train[1:3])
        print(
            json.dumps(
                {
                    "params": params,
                    "batch_size": batch_size,
                    "reviews": reviews,
                    "seconds": round(seconds, 2),
                    "reviews_per_second": round(reviews / seconds, 1),
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
