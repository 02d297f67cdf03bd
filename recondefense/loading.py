"""Safe loading of a weights folder: config.json's types, ranges and network size, then the safetensors
header's names and shapes, all checked before any tensor is read; non-finite weights refused.

Used by :meth:`recondefense.ReconstructiveDefense.from_pretrained` (its ``_from_pretrained``).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from typing import Any

import safetensors.torch
import torch
from huggingface_hub import hf_hub_download
from torch import nn

from .errors import ConfigError, CorruptWeightsError, ModelTooLargeError, NonFiniteWeightsError, WeightsMismatchError
from .purifiers import ARCHITECTURES, GATED_INNER
from .weights import SAFETENSORS_FILE

__all__ = ["FORMAT_VERSION", "MAX_PARAMETERS", "load_checked"]

#: Version of the config.json layout written by ``save_pretrained``; loading refuses any other.
FORMAT_VERSION = 1
#: The largest network config.json may describe (parameters); the shipped ones have under 0.2 M.
MAX_PARAMETERS = 50_000_000
#: config.json keys: (type, low, high) for integers, a type otherwise; checked before anything is built.
_INT_RANGES = {
    "in_channels": (1, 16),
    "width": (1, 1024),
    "depth": (1, 8),
    "detail_width": (1, 256),
    "detail_depth": (1, 6),
}


def load_checked(
    factory: Callable[..., nn.Module],
    config: Any,
    model_id: str,
    known: set[str],
    *,
    map_location: str = "cpu",
    **hub: Any,
) -> nn.Module:
    """``factory(**config)`` with the weights of ``model_id`` (a folder, or a hub repo id downloaded here).

    Everything is checked before any allocation: the config's types and ranges, the network's size (built on
    the meta device), then the safetensors header's names and shapes; only then are the tensors read, and
    non-finite ones refused. ``known`` is the set of keys config.json may hold; ``hub`` goes to
    ``huggingface_hub.hf_hub_download`` (``revision``, ``cache_dir``, ``force_download``, ``local_files_only``,
    ``token``).

    Raises:
        FileNotFoundError: no config.json or no model.safetensors.
        WeightsError: any of the checks (see :mod:`recondefense.errors`).
    """
    if config is None:
        raise FileNotFoundError(f"{model_id}: config.json is missing; save weights with save_pretrained()")
    kwargs = _validated_config(config, model_id, known, factory)
    if os.path.isdir(model_id):
        model_file = os.path.join(model_id, SAFETENSORS_FILE)
        if not os.path.isfile(model_file):
            raise FileNotFoundError(f"{model_id}: {SAFETENSORS_FILE} is missing (only safetensors weights are read)")
    else:
        model_file = hf_hub_download(repo_id=model_id, filename=SAFETENSORS_FILE, **hub)
    with torch.device("meta"):
        expected = factory(**kwargs).state_dict()
    _check_header(model_file, {k: tuple(v.shape) for k, v in expected.items()})
    with _readable(model_file):
        state = safetensors.torch.load_file(model_file, device=str(map_location))
    bad = sorted(k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all())
    if bad:
        raise NonFiniteWeightsError(f"{model_file}: NaN or Inf values in {bad[:5]}")
    model = factory(**kwargs)
    model.load_state_dict(state, strict=True)
    return model.to(map_location)


def _validated_config(
    config: Any, source: str, known: set[str], factory: Callable[..., nn.Module] | None = None
) -> dict[str, Any]:
    """The constructor arguments of a config.json after checking types, ranges and the size of
    ``factory(**config)`` (default :class:`~recondefense.ReconstructiveDefense`; built on the meta device:
    nothing allocated).

    Raises:
        ConfigError: not a dict, wrong version, unknown key, a wrong type or out of range.
        ModelTooLargeError: the network would have more than :data:`MAX_PARAMETERS` parameters.
    """
    if not isinstance(config, dict):
        raise ConfigError(f"{source}: config.json must hold a JSON object, got {type(config).__name__}")
    unknown = sorted(set(config) - known)
    version = config.get("format_version")
    if version != FORMAT_VERSION or isinstance(version, bool) or unknown:
        raise ConfigError(
            f"{source}: config.json is not a recondefense v{FORMAT_VERSION} config "
            f"(format_version={version!r}, unknown keys {unknown}): upgrade recondefense or re-export the weights"
        )

    def fail(key: str, wanted: str) -> ConfigError:
        return ConfigError(f"{source}: config.json {key}={config[key]!r}: expected {wanted}")

    for key, (low, high) in _INT_RANGES.items():
        value = config.get(key)
        if key in config and (type(value) is not int or not low <= value <= high):
            raise fail(key, f"an integer in [{low}, {high}]")
    if "skip" in config and type(config["skip"]) is not bool:
        raise fail("skip", "true or false")
    widths = config.get("widths")
    if widths is not None and (
        not isinstance(widths, list)
        or not 1 <= len(widths) <= _INT_RANGES["depth"][1]
        or any(type(w) is not int or not 1 <= w <= _INT_RANGES["width"][1] for w in widths)
    ):
        raise fail("widths", "null or a list of 1 to 8 integers in [1, 1024]")
    if "arch" in config and config["arch"] not in ARCHITECTURES:
        raise fail("arch", f"one of {sorted(ARCHITECTURES)}")
    if "inner" in config and config["inner"] not in GATED_INNER:
        raise fail("inner", f"one of {list(GATED_INNER)}")
    if config.get("meta") is not None and not isinstance(config["meta"], dict):
        raise fail("meta", "a JSON object or null")
    if factory is None:
        from .defense import ReconstructiveDefense as factory
    kwargs = dict(config)
    try:
        with torch.device("meta"):
            size = sum(p.numel() for p in factory(**kwargs).parameters())
    except ValueError as err:
        raise ConfigError(f"{source}: config.json describes no valid network: {err}") from err
    if size > MAX_PARAMETERS:
        raise ModelTooLargeError(
            f"{source}: config.json describes a network of {size:,} parameters, above the cap of {MAX_PARAMETERS:,}"
        )
    return kwargs


def _check_header(model_file: str, expected: dict[str, tuple[int, ...]]) -> None:
    """Compare the safetensors header's tensor names and shapes with ``expected`` without reading tensors.

    Raises:
        CorruptWeightsError: the header is unreadable.
        WeightsMismatchError: other names or shapes.
    """
    with _readable(model_file), safetensors.safe_open(model_file, framework="pt") as f:
        found = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    missing, extra = sorted(set(expected) - set(found)), sorted(set(found) - set(expected))
    shapes = sorted(k for k in set(found) & set(expected) if found[k] != expected[k])
    if missing or extra or shapes:
        raise WeightsMismatchError(
            f"{model_file}: weights do not match config.json (missing {missing[:5]}, unexpected {extra[:5]}, "
            f"other shapes {[(k, found[k], expected[k]) for k in shapes[:5]]})"
        )


@contextlib.contextmanager
def _readable(model_file: str) -> Iterator[None]:
    """Raise :class:`CorruptWeightsError` for whatever safetensors raises inside (its own error types for
    truncated or garbled files)."""
    try:
        yield
    except Exception as err:
        raise CorruptWeightsError(f"{model_file}: corrupt safetensors file ({err})") from err
