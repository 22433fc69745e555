"""The model API uses only what the ``EncryptedTensor`` protocol declares.

Training runs here on encrypted weights wrapped in a proxy that lets through exactly the members
of :class:`hennframework.scheme.EncryptedTensor` (attributes and operators) and fails on anything
else. A layer or op that reaches for an undeclared member of a ciphertext (as ``.T`` once was)
fails this test, so a scheme plugin that implements the protocol can run every model.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from hennframework.nn import BagOfWords, Sequential, make_batches
from hennframework.scheme import EncryptedTensor
from hennframework.schemes.integer_vector import IntegerVectorScheme


def _declared(protocol: type) -> set[str]:
    names: set[str] = set()
    for klass in protocol.__mro__:
        if klass in (object,) or klass.__name__ in ("Protocol", "Generic"):
            continue
        names |= {n for n in vars(klass) if not n.startswith("_") or n.startswith("__")}
        names |= set(getattr(klass, "__annotations__", {}))
    return names - {"__module__", "__doc__", "__dict__", "__weakref__", "__init__", "__slots__"}


DECLARED = _declared(EncryptedTensor)
used: set[str] = set()


def _unwrap(value: Any) -> Any:
    if isinstance(value, Strict):
        return value.inner
    if isinstance(value, list | tuple):
        return type(value)(_unwrap(v) for v in value)
    return value


def _wrap(value: Any) -> Any:
    return value if isinstance(value, np.ndarray | float | int) else Strict(value)


class Strict:
    """A ciphertext seen only through the protocol."""

    __slots__ = ("inner",)
    __array_ufunc__ = None  # NumPy defers to our reflected operators, as ciphertexts make it

    def __init__(self, inner: Any) -> None:
        object.__setattr__(self, "inner", inner)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # NumPy's and Python's probes: absent, as on a ciphertext
            raise AttributeError(name)
        if name not in DECLARED:
            raise AssertionError(
                f"the model API used {name!r}, which EncryptedTensor does not declare"
            )
        used.add(name)
        value = getattr(self.inner, name)
        if callable(value):
            return lambda *a, **k: _wrap(
                value(*_unwrap(a), **{n: _unwrap(v) for n, v in k.items()})
            )
        return _wrap(value) if name == "T" else value


def _operator(name: str) -> Any:
    def method(self: Strict, *args: Any) -> Any:
        if name not in DECLARED:
            raise AssertionError(
                f"the model API used {name!r}, which EncryptedTensor does not declare"
            )
        used.add(name)
        return _wrap(getattr(self.inner, name)(*_unwrap(args)))

    return method


for _name in (
    "__add__", "__radd__", "__sub__", "__rsub__", "__mul__", "__rmul__", "__matmul__",
    "__rmatmul__", "__neg__", "__getitem__", "__truediv__", "__pow__", "__len__",
):  # fmt: skip
    setattr(Strict, _name, _operator(_name))


def _strict(model: Sequential) -> Sequential:
    model.set_weights([Strict(w) for w in model.weights()])
    return model


def _plain(model: Sequential, scheme: IntegerVectorScheme, secret: Any) -> list[Any]:
    return [scheme.decrypt_tensor(_unwrap(w), secret) for w in model.weights()]


def test_dense_models_use_only_the_protocol(scheme: IntegerVectorScheme) -> None:
    keys = scheme.keygen(seed=1)
    x = np.random.default_rng(0).normal(size=(6, 3))
    y = (x[:, :1] > 0).astype(float)
    plain = Sequential.mlp([3, 4, 1], activation="taylor3", bias=True, seed=2)
    model = _strict(plain.encrypt(keys, scheme))
    loss = model.train_step(make_batches(x, y, 6)[0], 0.1).loss
    plain.train_step(make_batches(x, y, 6)[0], 0.1)
    assert isinstance(loss, Strict)
    for got, want in zip(_plain(model, scheme, keys.secret), plain.weights(), strict=True):
        np.testing.assert_allclose(got, want, atol=2e-3)
    assert {"T", "__matmul__", "polyval", "sum"} <= used


def test_the_bag_of_words_model_uses_only_the_protocol(scheme: IntegerVectorScheme) -> None:
    keys = scheme.keygen(seed=2)
    words = BagOfWords.from_reviews([[0, 3], [], [1, 2, 4], [4]])
    plain = Sequential.bag_of_words(5, 3, seed=0)
    model = _strict(plain.encrypt(keys, scheme))
    batch = make_batches(words, [1, 0, 1, 0], 4)[0]
    model.train_step(batch, 0.1)
    plain.train_step(batch, 0.1)
    for got, want in zip(_plain(model, scheme, keys.secret), plain.weights(), strict=True):
        np.testing.assert_allclose(got, want, atol=2e-3)
    assert {"segment_sum", "scatter_add", "__getitem__"} <= used


def test_an_undeclared_member_is_caught(scheme: IntegerVectorScheme) -> None:
    keys = scheme.keygen(seed=3)
    tensor = Strict(scheme.encrypt_tensor(np.ones((2, 2)), keys.public))
    with pytest.raises(AssertionError, match="does not declare"):
        tensor.key_switch_secretly  # noqa: B018
