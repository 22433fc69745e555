"""scikit-learn estimators whose weights are trained encrypted (needs the ``sklearn`` extra).

``pip install "hennframework[sklearn]"``; then::

    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from hennframework.sklearn import EncryptedMLPClassifier

    model = make_pipeline(StandardScaler(), EncryptedMLPClassifier(hidden_layer_sizes=(8,)))

See docs/sklearn.md ("Use it with scikit-learn").
"""

from __future__ import annotations

try:
    import sklearn  # noqa: F401  (checked here so the error names the extra)
except ImportError as exc:  # pragma: no cover - exercised without scikit-learn installed
    from hennframework.exceptions import PluginDependencyError

    raise PluginDependencyError(
        "hennframework.sklearn needs scikit-learn, which is not installed. Install it with "
        'pip install "hennframework[sklearn]" (or pip install "scikit-learn>=1.4").'
    ) from exc

from hennframework.sklearn.estimators import EncryptedLogisticRegression, EncryptedMLPClassifier

__all__ = ["EncryptedLogisticRegression", "EncryptedMLPClassifier"]
