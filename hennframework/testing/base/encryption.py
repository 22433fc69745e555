"""Encryption and decryption: Dec(Enc(x)) ~ x with either key, and the tensor protocol."""

from __future__ import annotations

import numpy as np

from hennframework.scheme import Capability, EncryptedTensor, HEScheme, KeySet
from hennframework.testing import strategies as hst
from hennframework.testing.base.base import Data, SchemeFixtures, kit_given, require_capabilities
from hennframework.testing.bounds import ErrorModel

__all__ = ["BaseEncryptionTests"]


class BaseEncryptionTests(SchemeFixtures):
    """Dec(Enc(x)) ~ x with either key; the tensor keeps the shape and reports a scale."""

    @kit_given()
    def test_roundtrip_public_key(
        self, scheme: HEScheme, keys: KeySet, errors: ErrorModel, value_range: float, data: Data
    ) -> None:
        require_capabilities(scheme, Capability.ENCRYPT_PUBLIC)
        x = data.draw(hst.real_arrays(hst.batch_shapes(), value_range), label="x")
        tensor = scheme.encrypt_tensor(x, keys.public)
        assert tuple(tensor.shape) == x.shape
        self.assert_decrypts(scheme, keys, tensor, errors.fresh(x), "Dec(Enc_pk(x))")

    @kit_given()
    def test_roundtrip_secret_key(
        self, scheme: HEScheme, keys: KeySet, errors: ErrorModel, value_range: float, data: Data
    ) -> None:
        require_capabilities(scheme, Capability.ENCRYPT_SECRET)
        x = data.draw(hst.real_arrays(hst.batch_shapes(), value_range), label="x")
        tensor = scheme.encrypt_tensor(x, keys.secret)
        assert tuple(tensor.shape) == x.shape
        self.assert_decrypts(scheme, keys, tensor, errors.fresh(x), "Dec(Enc_sk(x))")

    def test_tensor_protocol(self, scheme: HEScheme, keys: KeySet) -> None:
        tensor = self.encrypt(scheme, keys, [0.5, -0.25, 1.0])
        assert isinstance(tensor, EncryptedTensor), "encrypt_tensor must return an EncryptedTensor"
        assert tensor.scale > 0
        decrypted = scheme.decrypt_tensor(tensor, keys.secret)
        assert isinstance(decrypted, np.ndarray) and decrypted.dtype == np.float64
        assert decrypted.shape == (3,)

    @kit_given()
    def test_integer_valued_input(
        self, scheme: HEScheme, keys: KeySet, errors: ErrorModel, value_range: float, data: Data
    ) -> None:
        bound = max(int(value_range), 1)
        x = data.draw(hst.integer_arrays(hst.batch_shapes(), bound), label="x")
        tensor = self.encrypt(scheme, keys, x)
        self.assert_decrypts(scheme, keys, tensor, errors.fresh(x), "Dec(Enc(int x))")
