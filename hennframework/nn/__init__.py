"""The layer/model API: encrypted-weight training and prediction on plaintext data."""

from hennframework.nn.activations import SIGMOID_APPROXIMATIONS, SigmoidApproximation, get_sigmoid
from hennframework.nn.layers import Dense, Layer, Sigmoid
from hennframework.nn.model import History, OwnerRefresher, Sequential, TrainingRecord

__all__ = [
    "SIGMOID_APPROXIMATIONS",
    "Dense",
    "History",
    "Layer",
    "OwnerRefresher",
    "Sequential",
    "Sigmoid",
    "SigmoidApproximation",
    "TrainingRecord",
    "get_sigmoid",
]
