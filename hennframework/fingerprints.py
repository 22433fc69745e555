"""Key ids that are fingerprints of public key material, shared by every scheme.

A key's id is ``PREFIX`` + 32 hex digits (128 bits) of SHA-256 over a domain tag and the
canonical JSON of a header that the scheme builds from its public material (scheme name,
parameter set, hashes of the key parts). Recomputing it on every load is what makes a swapped
or relabelled key visible. Ids of files made before fingerprints were random labels: they are
refused with a message that says how to make new keys, never trusted.

>>> fingerprint_id("xx-", {"scheme": "demo"}).startswith("xx-")
True
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

from hennframework.exceptions import SerializationError

__all__ = ["FINGERPRINT_DOMAIN", "check_key_id", "fingerprint_id"]

#: Domain separation: these bytes start every hash input, so no other hash can collide with it.
FINGERPRINT_DOMAIN = b"hennframework/key-fingerprint/v1\x00"


def fingerprint_id(prefix: str, header: Mapping[str, Any]) -> str:
    """``prefix`` + the first 32 hex digits of SHA-256(domain tag + canonical JSON of header)."""
    encoded = json.dumps(header, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return prefix + hashlib.sha256(FINGERPRINT_DOMAIN + encoded.encode("ascii")).hexdigest()[:32]


def check_key_id(
    value: object, where: str, *, prefix: str, legacy: re.Pattern[str], made_by: str, keygen: str
) -> str:
    """``value`` if it has the fingerprint form ``prefix`` + 32 hex digits; else a clear error.

    ``legacy`` matches the random ids of older files (``made_by`` names what made them, e.g.
    "an older hennframework version"); ``keygen`` is the command that makes new keys.
    """
    if isinstance(value, str) and re.fullmatch(re.escape(prefix) + "[0-9a-f]{32}", value):
        return value
    if isinstance(value, str) and legacy.fullmatch(value):
        raise SerializationError(
            f"{where}: key {value} was made by {made_by}, whose key ids were random labels that "
            f"cannot be verified. Re-run `{keygen}` and encrypt the model again under the new key "
            "(`henn encrypt-model`)."
        )
    raise SerializationError(
        f"{where}: malformed key id {value!r} (expected {prefix} and 32 hex digits); the file is "
        "corrupted or was tampered with."
    )
