"""Warnings point at the user's line, whichever API raised them (``stacklevel``)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

import hennframework
from hennframework.exceptions import InsecureParametersWarning
from hennframework.schemes.integer_vector import IntegerVectorScheme, params


@pytest.fixture
def fresh_warning(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The insecure-parameters warning is shown once per process and set: forget it was shown."""
    monkeypatch.setattr(params, "_warned", set())
    yield


def test_get_scheme_warning_points_at_the_caller(fresh_warning: None) -> None:
    with pytest.warns(InsecureParametersWarning, match="'seed' gives NO security") as record:
        hennframework.get_scheme("integer-vector", params="seed")
    assert [w.filename for w in record] == [__file__]
    assert "__init__" not in record[0].filename


def test_constructor_warning_points_at_the_caller(fresh_warning: None) -> None:
    with pytest.warns(InsecureParametersWarning) as record:
        IntegerVectorScheme("vhe")
    assert [w.filename for w in record] == [__file__]


def test_estimator_fit_warning_points_at_the_caller(fresh_warning: None) -> None:
    sklearn_estimators = pytest.importorskip("hennframework.sklearn")
    X = np.array([[0.0, 1.0], [1.0, 0.0], [0.5, 0.2], [0.1, 0.9]])
    estimator = sklearn_estimators.EncryptedLogisticRegression(params="seed", epochs=1)
    with pytest.warns(InsecureParametersWarning) as record:
        estimator.fit(X, [0, 1, 1, 0])
    assert [w.filename for w in record] == [__file__]
