"""Exception types of recondefense: one per way a weights folder can be refused, so callers catch by type.

All derive from :class:`WeightsError`, itself a ``ValueError`` (what earlier versions raised). One warning type,
:class:`InputConventionWarning`, says that a batch looks like the other input convention.
"""

from __future__ import annotations

__all__ = [
    "WeightsError",
    "ConfigError",
    "ModelTooLargeError",
    "WeightsMismatchError",
    "CorruptWeightsError",
    "NonFiniteWeightsError",
    "InputConventionWarning",
]


class WeightsError(ValueError):
    """A weights folder (config.json + model.safetensors) that cannot be loaded."""


class ConfigError(WeightsError):
    """config.json is not a valid recondefense config: wrong version, unknown key, wrong type or range."""


class ModelTooLargeError(ConfigError):
    """config.json describes a network above the parameter cap; refused before anything is allocated."""


class WeightsMismatchError(WeightsError):
    """A safetensors file holds other tensor names or shapes than the network it is loaded into: the one
    config.json describes, or a classifier spec's (e.g. another number of classes)."""


class CorruptWeightsError(WeightsError):
    """model.safetensors is unreadable (truncated, garbled) or does not match its registered sha256."""


class NonFiniteWeightsError(WeightsError):
    """model.safetensors holds NaN or Inf values."""


class InputConventionWarning(UserWarning):
    """A batch that looks like the other input convention: ``Defended`` expects images normalized with the model's
    mean/std, but every value lies in [0, 1] and the batch un-normalizes to a narrow grey band (were [0, 1] pixels
    passed?). Filter it with ``warnings.filterwarnings("ignore", category=InputConventionWarning)``, or say the
    convention with ``Defended(..., input="normalized")``."""
