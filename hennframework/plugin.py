"""What a scheme or backend author imports: the whole plugin contract of hennframework, in one place.

A plugin (a scheme such as ``hennframework_ckks``, or an array backend) needs these names and no
others from hennframework::

    from hennframework.plugin import Capability, HEScheme, KeySet, ParameterSet, register_codec

* the scheme interface: :class:`HEScheme`, :class:`ParameterSet`, :class:`KeySet`,
  :class:`Capability` and :func:`require`;
* the tensor protocols: :class:`EncryptedTensor` (every member the model API uses) and
  :class:`MagnitudeTracked` (schemes that declare ``Capability.MAGNITUDE_TRACKING``);
* saving and loading: :class:`SchemeCodec`, the :class:`EntrySink` a codec writes to and the
  :class:`EntrySource` it reads from, :func:`parameter_record` (the shape check of a saved
  parameter set), and :func:`register_codec`, which a scheme's package calls
  once when it is imported;
* the array-backend interface: :class:`ArrayBackend`, :data:`Array` and :func:`default_backend`;
* the errors a plugin raises (all subclasses of :class:`HennError`) and
  :class:`InsecureParametersWarning`;
* randomness: :class:`RandomSource` (a CSPRNG, or a seeded stream for tests) and
  :func:`as_random_source`;
* key ids: :mod:`fingerprints <hennframework.fingerprints>` (``fingerprint_id``, the
  domain-tagged hash every scheme's key ids are made with, and ``check_key_id``).

Like OpenTelemetry's API package, this module is only a face: it defines nothing and re-exports
names from the modules that define them (:mod:`hennframework.scheme`, :mod:`hennframework.codec`,
:mod:`hennframework.backend`, :mod:`hennframework.exceptions`, :mod:`hennframework.randomness`,
:mod:`hennframework.fingerprints`). Those modules sit below everything else in hennframework, so
importing the face pulls in neither the file layer, the plugin registry nor the model API, and a
plugin that imports only from here cannot form an import circle with them. Names stay importable
from here across releases while the modules behind the face may be reorganised.
"""

from hennframework import fingerprints
from hennframework.backend import Array, ArrayBackend, default_backend
from hennframework.codec import (
    EntrySink,
    EntrySource,
    SchemeCodec,
    parameter_record,
    register_codec,
)
from hennframework.exceptions import (
    BackendUnavailableError,
    CapabilityError,
    HennError,
    InputError,
    InsecureParametersWarning,
    KeyMismatchError,
    NoiseBudgetExhaustedError,
    OverflowRiskError,
    PluginDependencyError,
    SerializationError,
)
from hennframework.randomness import RandomSource, as_random_source
from hennframework.scheme import (
    AFTER_GATHERED_ROWS,
    GATHERED_ROWS,
    Capability,
    EncryptedTensor,
    HEScheme,
    KeySet,
    MagnitudeTracked,
    ParameterSet,
    require,
)

__all__ = [
    "AFTER_GATHERED_ROWS",
    "GATHERED_ROWS",
    "Array",
    "ArrayBackend",
    "BackendUnavailableError",
    "Capability",
    "CapabilityError",
    "EncryptedTensor",
    "EntrySink",
    "EntrySource",
    "HEScheme",
    "HennError",
    "InputError",
    "InsecureParametersWarning",
    "KeyMismatchError",
    "KeySet",
    "MagnitudeTracked",
    "NoiseBudgetExhaustedError",
    "OverflowRiskError",
    "ParameterSet",
    "PluginDependencyError",
    "RandomSource",
    "SchemeCodec",
    "SerializationError",
    "as_random_source",
    "default_backend",
    "fingerprints",
    "parameter_record",
    "register_codec",
    "require",
]
