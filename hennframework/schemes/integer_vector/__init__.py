"""The integer-vector homomorphic encryption scheme (Zhou & Wornell 2014), exact and vectorised."""

from hennframework.schemes.integer_vector.ciphertext import Ciphertext
from hennframework.schemes.integer_vector.keys import (
    EvaluationKeys,
    KeySwitchKey,
    PublicKey,
    SecretKey,
)
from hennframework.schemes.integer_vector.params import PARAMETER_SETS, IntegerVectorParams
from hennframework.schemes.integer_vector.scheme import IntegerVectorScheme

__all__ = [
    "PARAMETER_SETS",
    "Ciphertext",
    "EvaluationKeys",
    "IntegerVectorParams",
    "IntegerVectorScheme",
    "KeySwitchKey",
    "PublicKey",
    "SecretKey",
]
