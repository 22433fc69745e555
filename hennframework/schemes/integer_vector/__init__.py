"""The integer-vector homomorphic encryption scheme (Zhou & Wornell 2014), exact and vectorised.

Importing this package registers :class:`IntegerVectorCodec` for the scheme name
``integer-vector`` (:func:`hennframework.codec.register_codec`), the same way a scheme plugin
registers its codec, so that its keys, tensors and models can be saved in ``.henn`` files.
"""

from hennframework.codec import register_codec
from hennframework.schemes.integer_vector.ciphertext import Ciphertext
from hennframework.schemes.integer_vector.codec import IntegerVectorCodec
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
    "IntegerVectorCodec",
    "IntegerVectorParams",
    "IntegerVectorScheme",
    "KeySwitchKey",
    "PublicKey",
    "SecretKey",
]

register_codec(IntegerVectorCodec())
