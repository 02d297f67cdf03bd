"""Exception types of recondefense: one per way a weights folder can be refused, so callers catch by type.

All derive from :class:`WeightsError`, itself a ``ValueError`` (what earlier versions raised).
"""

from __future__ import annotations

__all__ = [
    "WeightsError",
    "ConfigError",
    "ModelTooLargeError",
    "WeightsMismatchError",
    "CorruptWeightsError",
    "NonFiniteWeightsError",
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
