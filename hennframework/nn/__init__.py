"""The layer/model API: encrypted-weight training and prediction on plaintext data.

A model is a :class:`Sequential` of layers (:class:`Dense`, :class:`EmbeddingSum`,
:class:`Sigmoid`, or your own :class:`Layer` subclass); every model trains through the one loop,
:func:`train` (``Sequential.fit`` calls it), on :class:`Batch` es of plaintext data.
"""

from hennframework.nn.activations import SIGMOID_APPROXIMATIONS, SigmoidApproximation, get_sigmoid
from hennframework.nn.batches import BagOfWords, Batch, make_batches
from hennframework.nn.layers import Dense, EmbeddingSum, Layer, Sigmoid, layer_from_config
from hennframework.nn.model import (
    WORD_MODEL_DEFAULTS,
    OwnerRefresher,
    Sequential,
    word_model_defaults,
)
from hennframework.nn.training import (
    History,
    Progress,
    Refresher,
    StepResult,
    Trainable,
    TrainingRecord,
    TrainingState,
    TrainOutcome,
    absorb_weight_noise,
    train,
)

__all__ = [
    "SIGMOID_APPROXIMATIONS",
    "WORD_MODEL_DEFAULTS",
    "BagOfWords",
    "Batch",
    "Dense",
    "EmbeddingSum",
    "History",
    "Layer",
    "OwnerRefresher",
    "Progress",
    "Refresher",
    "Sequential",
    "Sigmoid",
    "SigmoidApproximation",
    "StepResult",
    "TrainOutcome",
    "Trainable",
    "TrainingRecord",
    "TrainingState",
    "absorb_weight_noise",
    "get_sigmoid",
    "layer_from_config",
    "make_batches",
    "train",
    "word_model_defaults",
]
