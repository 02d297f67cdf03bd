"""Safe loading of a weights folder: config.json's types, ranges and network size, then the safetensors
header's names and shapes, all checked before any tensor is read; non-finite weights refused.

Used by :meth:`recondefense.ReconstructiveDefense.from_pretrained` (:func:`check_folder` or :func:`check_hub_id`
before huggingface_hub's mixin reads anything, :func:`load_checked` in its ``_from_pretrained``) and by
:func:`recondefense.classifiers.load_classifier` (:func:`load_state_checked`).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator
from typing import Any

import safetensors.torch
import torch
from huggingface_hub import get_hf_file_metadata, hf_hub_download, hf_hub_url, try_to_load_from_cache
from huggingface_hub.utils import (
    EntryNotFoundError,
    HfHubHTTPError,
    HFValidationError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from torch import nn

from .errors import ConfigError, CorruptWeightsError, ModelTooLargeError, NonFiniteWeightsError, WeightsMismatchError
from .purifier_config import PurifierConfig
from .weights import CONFIG_FILE, SAFETENSORS_FILE

__all__ = [
    "FORMAT_VERSION",
    "MAX_PARAMETERS",
    "load_checked",
    "check_folder",
    "config_errors",
    "check_hub_id",
    "hub_not_found",
    "load_state_checked",
]

#: Version of the config.json layout written by ``save_pretrained``; loading refuses any other.
FORMAT_VERSION = 1
#: The largest network config.json may describe (parameters); the shipped ones have under 0.2 M.
MAX_PARAMETERS = 50_000_000


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


def _validated_config(config: Any, source: str, known: set[str], factory: Callable[..., nn.Module]) -> dict[str, Any]:
    """The constructor arguments of a config.json after checking types, ranges and the size of
    ``factory(**config)`` (e.g. :class:`~recondefense.ReconstructiveDefense`, passed in by the caller: this module
    sits below the classes it loads; built on the meta device: nothing allocated).

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

    bad = PurifierConfig.from_dict(config).problem()  # the defaults of absent keys are valid
    if bad is not None:
        raise fail(*bad)
    if config.get("meta") is not None and not isinstance(config["meta"], dict):
        raise fail("meta", "a JSON object or null")
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


def _check_header(
    model_file: str, expected: dict[str, tuple[int, ...]], against: str = CONFIG_FILE, hint: str = ""
) -> None:
    """Compare the safetensors header's tensor names and shapes with ``expected`` (those of ``against``, named in
    the message, e.g. ``"config.json"``) without reading tensors; ``hint`` (how to fix it) ends the message.

    Raises:
        CorruptWeightsError: the header is unreadable.
        WeightsMismatchError: other names or shapes, e.g. ``fc.weight 2x512 in the file, 1000x512 expected``.
    """
    with _readable(model_file), safetensors.safe_open(model_file, framework="pt") as f:
        found = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    missing, extra = sorted(set(expected) - set(found)), sorted(set(found) - set(expected))
    shapes = sorted(k for k in set(found) & set(expected) if found[k] != expected[k])
    if missing or extra or shapes:
        problems = [f"{k} {_shape(found[k])} in the file, {_shape(expected[k])} expected" for k in shapes[:5]]
        problems += [f"missing {missing[:5]}"] if missing else []
        problems += [f"unexpected {extra[:5]}"] if extra else []
        raise WeightsMismatchError(
            f"{model_file}: weights do not match {against} ({'; '.join(problems)})" + (f"; {hint}" if hint else "")
        )


def _shape(shape: tuple[int, ...]) -> str:
    """``2x512`` for ``(2, 512)``, ``scalar`` for ``()``."""
    return "x".join(map(str, shape)) or "scalar"


def load_state_checked(model: nn.Module, path: str | os.PathLike[str], against: str, hint: str = "") -> nn.Module:
    """Load the safetensors state dict at ``path`` into ``model`` (strict), its header's tensor names and shapes
    compared with ``model``'s before any tensor is read. ``against`` names ``model`` in the messages (e.g.
    ``"classifier spec 'torchvision:resnet18'"``); ``hint`` says how to build the right network.

    Returns:
        ``model``, loaded.

    Raises:
        FileNotFoundError: no file at ``path``.
        CorruptWeightsError: not a readable safetensors file.
        WeightsMismatchError: other tensor names or shapes (each named, with both shapes).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such weights file (for {against})")
    _check_header(path, {k: tuple(v.shape) for k, v in model.state_dict().items()}, against, hint)
    with _readable(path):
        state = safetensors.torch.load_file(path)
    model.load_state_dict(state, strict=True)
    return model


def check_folder(folder: str | os.PathLike[str]) -> None:
    """Refuse a local weights folder before huggingface_hub's mixin reads it: for a folder without config.json
    the mixin logs a stray "config.json not found" line, for a malformed one it raises a JSONDecodeError naming no
    file.

    Raises:
        FileNotFoundError: ``folder`` holds no config.json.
        ConfigError: its config.json is not UTF-8 JSON (the message names the file).
    """
    config_file = os.path.join(folder, CONFIG_FILE)
    if not os.path.isfile(config_file):
        raise FileNotFoundError(f"{folder}: {CONFIG_FILE} is missing; save weights with save_pretrained()")
    with config_errors(config_file), open(config_file, encoding="utf-8") as f:
        json.load(f)


@contextlib.contextmanager
def config_errors(config_file: str) -> Iterator[None]:
    """Raise :class:`ConfigError` naming ``config_file`` (a path, or e.g. ``"config.json of the hub repo a/b"``)
    for a config.json that is not UTF-8 JSON, whoever parses it inside (huggingface_hub's mixin raises a bare
    JSONDecodeError)."""
    try:
        yield
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(
            f"{config_file}: not valid JSON ({err}); fix it or save the weights again with save_pretrained()"
        ) from err


def hub_not_found(repo_id: str, reason: str) -> FileNotFoundError:
    """The error for a string that is neither a local folder nor a loadable hub repo id, naming both (``runs/mine``
    may be meant as either) and ``reason``, why the hub failed."""
    return FileNotFoundError(
        f"cannot load {repo_id!r}: no local folder {os.path.abspath(repo_id)}, "
        f"and the hub id {repo_id!r} could not be loaded: {reason}"
    )


def _hub_offline() -> bool:
    """Whether huggingface_hub is in offline mode (``HF_HUB_OFFLINE``, also when set after it was imported)."""
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE) or os.environ.get("HF_HUB_OFFLINE", "").upper() in {"1", "ON", "YES", "TRUE"}


def check_hub_id(
    repo_id: str,
    *,
    revision: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    token: str | bool | None = None,
    local_files_only: bool = False,
    force_download: bool = False,
    timeout: float = 10,
) -> None:
    """Fail fast when ``repo_id`` (a string naming no local folder) cannot come from the Hugging Face hub, instead
    of ``hf_hub_download``'s ~20 s of retries when the hub is unreachable. A repo whose config.json is in the hub
    cache passes (the mixin loads it, or refreshes it when online); otherwise offline (``HF_HUB_OFFLINE`` or
    ``local_files_only``) fails at once, and online one HEAD request for its config.json must be answered.

    Raises:
        FileNotFoundError: from :func:`hub_not_found`, naming the missing folder and why the hub id failed.
    """
    try:
        cached = try_to_load_from_cache(repo_id, CONFIG_FILE, cache_dir=cache_dir, revision=revision)
    except HFValidationError as err:
        raise hub_not_found(repo_id, f"not a valid hub id ({err})") from err
    if isinstance(cached, str) and not force_download:
        return
    if local_files_only or _hub_offline():
        why = "local_files_only=True" if local_files_only else "HF_HUB_OFFLINE is set"
        raise hub_not_found(repo_id, f"it is not in the local hub cache ({why})")
    try:
        get_hf_file_metadata(hf_hub_url(repo_id, CONFIG_FILE, revision=revision), token=token, timeout=timeout)
    except (RepositoryNotFoundError, RevisionNotFoundError, EntryNotFoundError) as err:  # the hub said no
        raise hub_not_found(repo_id, f"{type(err).__name__}: {str(err).splitlines()[0]}") from err
    except HfHubHTTPError:  # another answer (rate limit, server error): hf_hub_download retries it and reports it
        return
    except Exception as err:  # no answer at all (no network, DNS, proxy, timeout), whatever the HTTP client
        raise hub_not_found(repo_id, f"the hub is unreachable ({type(err).__name__}: {err})") from err


@contextlib.contextmanager
def _readable(model_file: str) -> Iterator[None]:
    """Raise :class:`CorruptWeightsError` for whatever safetensors raises inside (its own error types for
    truncated or garbled files)."""
    try:
        yield
    except Exception as err:
        raise CorruptWeightsError(f"{model_file}: corrupt safetensors file ({err})") from err
