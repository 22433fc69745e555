"""Safe, versioned files for everything that crosses a party boundary (no pickle, ever).

* :mod:`hennframework.io.container` - the ``.henn`` container: a zip of ``manifest.json`` and raw
  ``.npy`` arrays, checksummed, versioned, with a declared kind; atomic writes; mode 0600 for
  private kinds.
* :mod:`hennframework.io.codecs` - finding a scheme's codec (:func:`codec_for`; the codec
  contract and :func:`register_codec` are in :mod:`hennframework.codec`) and the secret-key scan
  that every public writer runs.
* :mod:`hennframework.io.bundles` - one function per file kind: keys, ciphertexts, models,
  histories, predictions.

The format is specified in docs/parties.md ("File format").
"""

from hennframework.io.bundles import (
    KeyFile,
    PredictionsFile,
    load_ciphertexts,
    load_history,
    load_model,
    load_predictions,
    load_public_key,
    load_secret_key,
    load_switch_key,
    save_ciphertexts,
    save_history,
    save_keys,
    save_model,
    save_predictions,
    save_public_key,
    save_secret_key,
    save_switch_key,
)
from hennframework.io.codecs import (
    EntrySink,
    EntrySource,
    SchemeCodec,
    codec_for,
    find_secret,
    register_codec,
)
from hennframework.io.container import (
    FORMAT_NAME,
    FORMAT_VERSION,
    KINDS,
    SUPPORTED_VERSIONS,
    Bundle,
    Limits,
    read_bundle,
    read_manifest,
    write_bundle,
)
from hennframework.io.models import ModelBundle

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "KINDS",
    "SUPPORTED_VERSIONS",
    "Bundle",
    "EntrySink",
    "EntrySource",
    "KeyFile",
    "Limits",
    "ModelBundle",
    "PredictionsFile",
    "SchemeCodec",
    "codec_for",
    "find_secret",
    "load_ciphertexts",
    "load_history",
    "load_model",
    "load_predictions",
    "load_public_key",
    "load_secret_key",
    "load_switch_key",
    "read_bundle",
    "read_manifest",
    "register_codec",
    "save_ciphertexts",
    "save_history",
    "save_keys",
    "save_model",
    "save_predictions",
    "save_public_key",
    "save_secret_key",
    "save_switch_key",
    "write_bundle",
]
