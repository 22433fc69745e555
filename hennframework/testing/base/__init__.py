"""The plugin kit: base test classes, one module per concern, that a plugin's tests subclass.

Modelled on pandas' ``tests/extension/base``: the tests are written once, against the abstract
interfaces only (:class:`~hennframework.scheme.HEScheme` and the operators of
:class:`~hennframework.scheme.EncryptedTensor`; :class:`~hennframework.io.codecs.SchemeCodec`;
:class:`~hennframework.backend.ArrayBackend`), and a plugin runs them by subclassing and overriding
a few class-scoped fixtures. The modules:

* ``base``: the shared fixtures (:class:`SchemeFixtures`), ``kit_settings``, ``kit_given``,
  ``require_capabilities``;
* ``encryption``: :class:`BaseEncryptionTests`, Dec(Enc(x)) ~ x with either key;
* ``arithmetic``: :class:`BaseArithmeticTests`, sums, differences, negation, broadcasting;
* ``products``: :class:`BasePlainProductTests` and :class:`BaseCipherProductTests`;
* ``matmul``: :class:`BaseMatmulTests`, plaintext and encrypted matrix products;
* ``indexing``: :class:`BaseIndexingTests`, sum(axis), indexing, reshape, ``scatter_add``;
* ``polynomial``: :class:`BasePolynomialTests`, ``polyval``;
* ``batch``: :class:`BaseBatchTests`, a batch equals its items one by one;
* ``errors``: :class:`BaseErrorTests`, wrong keys, NaN/inf, shape mismatches, dtypes;
* ``noise``: :class:`BaseNoiseTests`, the noise budget and repeated squaring;
* ``magnitude``: :class:`BaseMagnitudeTests`, right within the bound or refused;
* ``refresh``: :class:`BaseRefreshTests`, the owner's refresh;
* ``suite``: :class:`SchemeIdentityTests`, all of the above in one class;
* ``codec``: :class:`BaseCodecTests`, the scheme's serialisation codec;
* ``backend``: :class:`BaseBackendTests`, an array backend against the NumPy backend.

A scheme plugin::

    import pytest
    from hennframework.testing import SchemeIdentityTests

    class TestMyScheme(SchemeIdentityTests):
        @pytest.fixture(scope="class")
        @classmethod
        def scheme(cls):
            return MyScheme("my-params")

        @pytest.fixture(scope="class")
        @classmethod
        def tolerance(cls, scheme):
            return 2.0**-20          # |Dec(Enc(x)) - x| for a fresh encryption

The same fixtures serve :class:`BaseCodecTests` (subclass it alongside, or in its own class).
Fixtures of the scheme classes (all class-scoped, so keys are generated once per class; override
any of them with ``@pytest.fixture(scope="class")``):

``scheme``
    an instance of the scheme under test (required).
``tolerance``
    absolute error of a fresh encryption and of encoding a plaintext operand (required; derive it
    from the scheme's stated precision, e.g. ``1 / (2 * scale)`` for fixed point at ``scale``).
``op_tolerance``
    absolute error one operation adds when its result is rounded or rescaled (default
    ``2 * tolerance``).
``value_range``
    the suite draws plaintexts from ``[-value_range, value_range]`` (default 1.0); choose it so
    that depth-``max_depth`` products of such values stay inside the scheme's range.
``max_depth``
    the multiplicative depth the suite may use (default 2; polynomials up to degree
    ``2**max_depth``, at most 4).
``keygen_options``
    keyword arguments for ``scheme.keygen`` (default none); ``keys`` and ``other_keys`` are two
    independent key sets made with them (override ``keys`` and ``other_keys`` when the scheme's
    keys cannot be seeded).
``codec`` (:class:`BaseCodecTests` only)
    the codec under test (default: the one the loaders find, ``codec_for(scheme)``).

An array backend subclasses :class:`BaseBackendTests` and overrides one fixture, ``backend``.

Each scheme test first checks the capabilities the scheme *declares*
(``type(scheme).capabilities``) and is skipped, with the reason, when one is missing; nothing
else is skipped. A scheme that declares ``noise-tracking`` or ``magnitude-tracking`` promises
never to return a silently wrong decryption: :class:`BaseMagnitudeTests` runs random chains of
operations (with plaintext factors large enough to reach any limit) in which every step either is
refused with ``OverflowRiskError`` or ``NoiseBudgetExhaustedError`` (at the operation or at
decryption) or decrypts within its bound, and, for ``magnitude-tracking``, checks the tracked
bound against the decryptions and that a value just past the limit is refused. Error bounds come
from :class:`~hennframework.testing.bounds.ErrorModel` (no hard-coded tolerances). The Hypothesis
settings suppress the function-scoped-fixture health check because every fixture here is
read-only (keys are never modified by a test); example counts follow the active Hypothesis
profile.
"""

from __future__ import annotations

from hennframework.testing.base.arithmetic import BaseArithmeticTests
from hennframework.testing.base.backend import BaseBackendTests
from hennframework.testing.base.base import SchemeFixtures, kit_settings, require_capabilities
from hennframework.testing.base.batch import BaseBatchTests
from hennframework.testing.base.codec import BaseCodecTests
from hennframework.testing.base.encryption import BaseEncryptionTests
from hennframework.testing.base.errors import BaseErrorTests
from hennframework.testing.base.indexing import BaseIndexingTests
from hennframework.testing.base.magnitude import BaseMagnitudeTests
from hennframework.testing.base.matmul import BaseMatmulTests
from hennframework.testing.base.noise import BaseNoiseTests
from hennframework.testing.base.polynomial import BasePolynomialTests
from hennframework.testing.base.products import BaseCipherProductTests, BasePlainProductTests
from hennframework.testing.base.refresh import BaseRefreshTests
from hennframework.testing.base.suite import SchemeIdentityTests

__all__ = [
    "BaseArithmeticTests",
    "BaseBackendTests",
    "BaseBatchTests",
    "BaseCipherProductTests",
    "BaseCodecTests",
    "BaseEncryptionTests",
    "BaseErrorTests",
    "BaseIndexingTests",
    "BaseMagnitudeTests",
    "BaseMatmulTests",
    "BaseNoiseTests",
    "BasePlainProductTests",
    "BasePolynomialTests",
    "BaseRefreshTests",
    "SchemeFixtures",
    "SchemeIdentityTests",
    "kit_settings",
    "require_capabilities",
]
