"""Bad input raises the framework's errors: wrong keys, NaN/inf, shape mismatches, bad dtypes."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from hennframework.exceptions import InputError, KeyMismatchError
from hennframework.scheme import Capability, HEScheme, KeySet
from hennframework.testing.base.base import SchemeFixtures, require_capabilities

__all__ = ["BaseErrorTests"]


class BaseErrorTests(SchemeFixtures):
    """Bad input raises the framework's errors: wrong keys, NaN/inf, shape mismatch, bad dtypes."""

    def test_decrypt_with_wrong_key_raises(
        self, scheme: HEScheme, keys: KeySet, other_keys: KeySet
    ) -> None:
        tensor = self.encrypt(scheme, keys, [0.5, -1.0])
        with pytest.raises(KeyMismatchError):
            scheme.decrypt_tensor(tensor, other_keys.secret)

    def test_mixing_keys_in_addition_raises(
        self, scheme: HEScheme, keys: KeySet, other_keys: KeySet
    ) -> None:
        require_capabilities(scheme, Capability.ADD)
        a = self.encrypt(scheme, keys, [0.5, -1.0])
        b = self.encrypt(scheme, other_keys, [0.25, 1.0])
        with pytest.raises(KeyMismatchError):
            _ = a + b

    def test_mixing_keys_in_product_raises(
        self, scheme: HEScheme, keys: KeySet, other_keys: KeySet
    ) -> None:
        require_capabilities(scheme, Capability.MUL_CIPHER)
        a = self.encrypt(scheme, keys, [0.5, -1.0])
        b = self.encrypt(scheme, other_keys, [0.25, 1.0])
        with pytest.raises(KeyMismatchError):
            _ = a * b

    @pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
    def test_non_finite_input_raises(self, scheme: HEScheme, keys: KeySet, bad: float) -> None:
        with pytest.raises(InputError):
            self.encrypt(scheme, keys, [1.0, bad, 0.5])

    @pytest.mark.parametrize("bad", [np.nan, np.inf])
    def test_non_finite_plaintext_operand_raises(
        self, scheme: HEScheme, keys: KeySet, bad: float
    ) -> None:
        a = self.encrypt(scheme, keys, [1.0, 0.5])
        checked = 0
        caps = type(scheme).capabilities
        if Capability.ADD in caps:
            with pytest.raises(InputError):
                _ = a + np.array([bad, 1.0])
            checked += 1
        if Capability.MUL_PLAIN in caps:
            with pytest.raises(InputError):
                _ = a * bad
            checked += 1
        if Capability.MATMUL_PLAIN in caps:
            with pytest.raises(InputError):
                _ = np.array([[bad, 1.0]]) @ a
            checked += 1
        if not checked:
            pytest.skip(f"{scheme.name} declares no operation with plaintext operands")

    @pytest.mark.parametrize(
        "bad",
        [np.array([1.0, None], dtype=object), np.array(["1.0", "2"]), np.array([1 + 2j])],
        ids=["object", "str", "complex"],
    )
    def test_non_numeric_input_raises(self, scheme: HEScheme, keys: KeySet, bad: Any) -> None:
        key = keys.public if Capability.ENCRYPT_PUBLIC in type(scheme).capabilities else keys.secret
        with pytest.raises(InputError):
            scheme.encrypt_tensor(bad, key)

    def test_shape_mismatch_in_addition_raises(self, scheme: HEScheme, keys: KeySet) -> None:
        require_capabilities(scheme, Capability.ADD)
        a = self.encrypt(scheme, keys, [1.0, 2.0])
        b = self.encrypt(scheme, keys, [1.0, 2.0, 3.0])
        with pytest.raises(InputError):
            _ = a + b

    def test_shape_mismatch_with_plaintext_raises(self, scheme: HEScheme, keys: KeySet) -> None:
        require_capabilities(scheme, Capability.ADD, Capability.MUL_PLAIN)
        a = self.encrypt(scheme, keys, [1.0, 2.0])
        with pytest.raises(InputError):
            _ = a + np.array([1.0, 2.0, 3.0])
        with pytest.raises(InputError):
            _ = a * np.array([1.0, 2.0, 3.0])

    def test_shape_mismatch_in_product_raises(self, scheme: HEScheme, keys: KeySet) -> None:
        require_capabilities(scheme, Capability.MUL_CIPHER)
        a = self.encrypt(scheme, keys, [1.0, 2.0])
        b = self.encrypt(scheme, keys, [1.0, 2.0, 3.0])
        with pytest.raises(InputError):
            _ = a * b

    def test_shape_mismatch_in_matmul_raises(self, scheme: HEScheme, keys: KeySet) -> None:
        require_capabilities(scheme, Capability.MATMUL_PLAIN)
        a = self.encrypt(scheme, keys, [1.0, 2.0])
        with pytest.raises(InputError):
            _ = np.ones((2, 3)) @ a
        with pytest.raises(InputError):
            _ = a @ np.ones((3, 2))
