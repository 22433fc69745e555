"""Every error hennframework raises, in one place.

Each message says what went wrong *and* what to do about it. All errors derive from
:class:`HennError`, so callers can catch the whole family; where a built-in category fits
(``ValueError`` for bad input, ``ImportError`` for a missing dependency) the error also derives
from it, so generic handlers keep working.
"""

from __future__ import annotations

__all__ = [
    "BackendUnavailableError",
    "CapabilityError",
    "ConfigError",
    "DataFormatError",
    "DiskFullError",
    "HennError",
    "InputError",
    "InsecureParametersWarning",
    "KeyMismatchError",
    "NoiseBudgetExhaustedError",
    "OverflowRiskError",
    "PluginDependencyError",
    "SerializationError",
    "TrainingDivergedError",
    "UnknownPluginError",
]


class HennError(Exception):
    """Base class of every error raised by hennframework."""


class ConfigError(HennError, ValueError):
    """A configuration source (environment, pyproject.toml, user config file) is malformed."""


class UnknownPluginError(HennError, LookupError):
    """No backend or scheme with the requested name is installed."""


class PluginDependencyError(HennError, ImportError):
    """A backend or scheme is declared but a package it needs is not installed."""


class BackendUnavailableError(HennError, RuntimeError):
    """A backend is installed but cannot run here (for example CuPy without a GPU or driver)."""


class InputError(HennError, ValueError):
    """Bad input: wrong shape or dtype, NaN/inf, or values outside what the parameters allow."""


class KeyMismatchError(HennError, ValueError):
    """A ciphertext was used with a key or parameter set other than the one it belongs to."""


class CapabilityError(HennError, NotImplementedError):
    """The chosen scheme cannot perform an operation that a layer or call needs."""


class OverflowRiskError(HennError, ArithmeticError):
    """An operation could exceed the exact integer range; it was refused rather than wrapped."""


class NoiseBudgetExhaustedError(HennError, ArithmeticError):
    """Decryption refused: the tracked noise bound could reach w/2, so the result may be wrong."""


class TrainingDivergedError(HennError, ArithmeticError):
    """Training stopped: the loss or the weights became NaN or infinite (the model diverged)."""


class SerializationError(HennError, ValueError):
    """A saved file is truncated, corrupted, tampered with, of the wrong version or the wrong kind."""


class DataFormatError(HennError, ValueError):
    """A dataset file cannot be read: wrong layout, mismatched line counts, unknown labels."""


class DiskFullError(HennError, OSError):
    """A file could not be written because its disk (or the user's quota) is full.

    Also an ``OSError`` (``errno`` is ``ENOSPC`` or ``EDQUOT``), so generic handlers keep working;
    ``str()`` is the message alone. The partial file has been removed and any previous file at
    the target is unchanged.
    """

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "disk full"


class InsecureParametersWarning(UserWarning):
    """A parameter set with no cryptographic security is in use (shown once per process and set)."""
