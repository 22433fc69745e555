"""Security labels and checks: HE Standard limits, SEAL's own enforcement, no seeded keys."""

from __future__ import annotations

import numpy as np
import pytest
from hennframework import registry
from hennframework.exceptions import InputError, OverflowRiskError
from hennframework.scheme import Capability, KeySet

from hennframework_ckks import PARAMETER_SETS, CKKSParams, CKKSScheme
from hennframework_ckks._seal import sa
from hennframework_ckks.params import HE_STANDARD_MAX_BITS_128
from hennframework_ckks.tensor import encrypt_array


@pytest.mark.parametrize("name", sorted(PARAMETER_SETS))
def test_parameter_sets_are_128_bit(name: str) -> None:
    params = PARAMETER_SETS[name]
    assert params.total_bits <= HE_STANDARD_MAX_BITS_128[params.poly_modulus_degree]
    labelled = CKKSScheme.parameter_sets()[name]
    assert labelled.security_bits == 128 and labelled.is_secure
    assert labelled.security_label() == "128-bit classical"
    assert "HomomorphicEncryption.org" in labelled.security_note
    assert str(params.max_bits) in labelled.security_note


def test_he_standard_table() -> None:
    assert HE_STANDARD_MAX_BITS_128 == {
        1024: 27,
        2048: 54,
        4096: 109,
        8192: 218,
        16384: 438,
        32768: 881,
    }


def test_too_many_modulus_bits_are_refused_twice() -> None:
    with pytest.raises(InputError, match="exceed"):
        CKKSParams("bad", 8192, (40, 40, 40, 40, 60), 40)  # 220 > 218
    # and SEAL itself, with the plugin's check bypassed, refuses the same chain at tc128
    parms = sa.EncryptionParameters(sa.SCHEME_TYPE.CKKS)
    parms.set_poly_modulus_degree(8192)
    parms.set_coeff_modulus(sa.CoeffModulus.Create(8192, [40, 40, 40, 40, 60]))
    assert not sa.SEALContext(parms, True, sa.SEC_LEVEL_TYPE.TC128).parameters_set()


def test_seeded_keys_are_refused(scheme4096: CKKSScheme) -> None:
    with pytest.raises(InputError, match="seed"):
        scheme4096.keygen(seed=1)
    with pytest.raises(InputError, match="unknown keygen option"):
        scheme4096.keygen(max_dim=8)


def test_registered_and_described() -> None:
    assert registry.get_scheme_class("ckks") is CKKSScheme
    line = CKKSScheme.describe()
    assert "n16384 (128-bit classical)" in line
    assert Capability.UNLIMITED_DEPTH not in CKKSScheme.capabilities
    assert Capability.NOISE_TRACKING not in CKKSScheme.capabilities
    assert Capability.REFRESH in CKKSScheme.capabilities


def test_values_beyond_the_headroom_are_refused(scheme4096: CKKSScheme, keys4096: KeySet) -> None:
    """A fresh ciphertext holds up to its level's limit; at level 0 that is the headroom."""
    fresh = scheme4096.encrypt_tensor(np.zeros(1), keys4096.public).magnitude_limit
    with pytest.raises(OverflowRiskError, match="do not fit"):
        scheme4096.encrypt_tensor(np.array([0.0, fresh]), keys4096.public)
    with pytest.raises(OverflowRiskError, match="do not fit"):
        encrypt_array(keys4096.public, np.array([0.0, scheme4096.params.headroom]), level=0)
    below = encrypt_array(keys4096.public, np.array([0.0, 15.0]), level=0)
    np.testing.assert_allclose(scheme4096.decrypt_tensor(below, keys4096), [0.0, 15.0], atol=2e-3)


def test_secret_key_encryption(scheme4096: CKKSScheme, keys4096: KeySet) -> None:
    tensor = scheme4096.encrypt_tensor(np.array([0.25, -0.5]), keys4096.secret)
    np.testing.assert_allclose(scheme4096.decrypt_tensor(tensor, keys4096), [0.25, -0.5], atol=2e-3)
    with pytest.raises(InputError):
        scheme4096.decrypt_tensor(tensor, keys4096.public)
