"""The plugin-author kit run against the integer-vector scheme (as any scheme plugin would run it):
the identities and the codec (found through the codec registry, as the loaders find it).

Tolerances come from the scheme's fixed-point statement (docs/scheme.md): a fresh encryption of a
real x decrypts to round(x * f) / f, within 1 / (2 f); one rounded or rescaled operation adds at
most (1/2 + noise/w) / f < 1 / f, because decryption refuses once the noise bound reaches w/2.
"""

from __future__ import annotations

import pytest

from hennframework.scheme import Capability
from hennframework.schemes.integer_vector import IntegerVectorScheme
from hennframework.testing import BaseCodecTests, SchemeIdentityTests, require_capabilities

pytestmark = pytest.mark.filterwarnings(
    "ignore::hennframework.exceptions.InsecureParametersWarning"
)


class TestIntegerVectorIdentities(SchemeIdentityTests, BaseCodecTests):
    """The generic identities and the codec on the 'default' and 'vhe' parameter sets."""

    @pytest.fixture(scope="class", params=["default", "vhe"])
    @classmethod
    def scheme(cls, request: pytest.FixtureRequest) -> IntegerVectorScheme:
        return IntegerVectorScheme(request.param)

    @pytest.fixture(scope="class")
    @classmethod
    def tolerance(cls, scheme: IntegerVectorScheme) -> float:
        return 1.0 / (2 * scheme.params.scale)

    @pytest.fixture(scope="class")
    @classmethod
    def op_tolerance(cls, scheme: IntegerVectorScheme) -> float:
        return 1.0 / scheme.params.scale

    @pytest.fixture(scope="class")
    @classmethod
    def value_range(cls) -> float:
        # products of depth 2 (x**4 * 2 at most) stay far below w * |mu| < 2**62 for w = 2**40
        return 4.0


class AdditiveOnlyScheme(IntegerVectorScheme):
    """The integer-vector scheme declaring only public-key encryption and addition, as a plugin
    with fewer capabilities would: the kit must skip the rest, saying why, and pass what remains."""

    name = "additive-only-test"
    capabilities = frozenset({Capability.ENCRYPT_PUBLIC, Capability.ADD})


class TestKitHonoursDeclaredCapabilities(SchemeIdentityTests):
    @pytest.fixture(scope="class")
    @classmethod
    def scheme(cls) -> IntegerVectorScheme:
        return AdditiveOnlyScheme("default")

    @pytest.fixture(scope="class")
    @classmethod
    def tolerance(cls, scheme: IntegerVectorScheme) -> float:
        return 1.0 / (2 * scheme.params.scale)


@pytest.mark.parametrize("capability", sorted(set(Capability) - AdditiveOnlyScheme.capabilities))
def test_skip_reason_names_the_capability(capability: Capability) -> None:
    scheme = AdditiveOnlyScheme("default")
    reason = f"additive-only-test does not declare {capability.value}"
    with pytest.raises(pytest.skip.Exception, match=reason):
        require_capabilities(scheme, Capability.ADD, capability)
    require_capabilities(scheme, Capability.ADD, Capability.ENCRYPT_PUBLIC)  # declared: no skip
