"""``ReconstructiveDefense`` (the paper's AE as a transform with hub loading) and ``Defended``."""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import safetensors.torch
import torch
import torch.nn.functional as F
from huggingface_hub import ModelCard, PyTorchModelHubMixin, hf_hub_download
from torch import nn

from .classifiers import check_normalization
from .errors import (
    ConfigError,
    CorruptWeightsError,
    ModelTooLargeError,
    NonFiniteWeightsError,
    WeightsError,
    WeightsMismatchError,
)
from .purifiers import ARCHITECTURES, GATED_INNER, build_purifier
from .transform import PixelDefense, _value_range, _values_checked, is_tracing, range_tolerance
from .weights import SAFETENSORS_FILE, get_weights, list_weights

__all__ = ["ReconstructiveDefense", "Defended", "IMAGENET_MEAN", "IMAGENET_STD", "FORMAT_VERSION"]

#: Version of the config.json layout written by ``save_pretrained``; loading refuses any other.
FORMAT_VERSION = 1
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: Weights ``Defended(model)`` loads when no defense is given.
DEFAULT_IMAGENET_WEIGHTS = "imagenet-efficientnet_lite0_lite2-gated2-pgd"


class ReconstructiveDefense(
    PixelDefense,
    PyTorchModelHubMixin,
    library_name="recondefense",
    tags=["adversarial-defense", "image-classification", "recondefense"],
    repo_url="https://github.com/recondefense/recondefense",
):
    """The paper's reconstructive defense as a torchvision-style transform.

    Wraps a purifier network, ``.autoencoder``: the paper's
    :class:`~recondefense.autoencoder.ReconAutoencoder` (``arch="recon"``, the default, which is what a
    config.json without ``arch`` holds) or one of :mod:`recondefense.purifiers` (``"residual"``,
    ``"detail"``). Inputs of any height and width
    are padded (replicate) to the AE's stride multiple and cropped back. Parameters are frozen and
    the module stays in eval mode (``.train()`` does not switch it); gradients still flow to the
    input, so attacks can go through it. Train the AE itself with :mod:`recondefense.train`.

    Shape: ``(C, H, W)`` or ``(N, C, H, W)`` -> same shape. Values: float in [0, 1] (or ``uint8``,
    scaled by 1/255, returned as ``float32``) -> [0, 1]; ``float16``/``bfloat16`` inputs are returned
    in their dtype.

    Args:
        in_channels, width, depth, skip, widths: the network's hyper-parameters (see ``ReconAutoencoder``;
            ``"residual"`` uses ``width`` and ``depth`` for its U-Net, ``"detail"`` for its bottleneck AE).
        arch: ``"recon"``, ``"residual"``, ``"detail"`` or ``"gated"`` (:data:`recondefense.purifiers.ARCHITECTURES`).
        detail_width, detail_depth: the detail U-Net of ``"detail"``, the gate of ``"gated"`` (ignored otherwise).
        inner: what ``"gated"`` holds behind its gate, ``"recon"`` or ``"residual"`` (ignored otherwise).
        meta: free-form metadata saved in config.json (dataset, classifier, mean/std, metrics).
        format_version: config layout version; anything but :data:`FORMAT_VERSION` is refused.

    Example:
        >>> defense = ReconstructiveDefense.from_pretrained("fashionmnist-smallcnn-pgd")  # doctest: +SKIP
        >>> clean = defense(images)  # doctest: +SKIP
    """

    def __init__(
        self,
        in_channels: int = 3,
        width: int = 16,
        depth: int = 3,
        skip: bool = True,
        widths: list | None = None,
        meta: dict | None = None,
        format_version: int = FORMAT_VERSION,
        arch: str = "recon",
        detail_width: int = 16,
        detail_depth: int = 2,
        inner: str = "recon",
    ) -> None:
        if format_version != FORMAT_VERSION:
            raise ValueError(
                f"config.json has format_version={format_version!r}, this recondefense reads version {FORMAT_VERSION}: "
                "upgrade recondefense or re-export the weights"
            )
        if arch not in ARCHITECTURES:
            raise ValueError(f"unknown purifier architecture {arch!r}: expected one of {sorted(ARCHITECTURES)}")
        super().__init__()
        self.arch = arch
        #: the constructor's network arguments (what config.json holds besides meta and version)
        self.hyperparameters: dict[str, Any] = {
            "in_channels": in_channels,
            "width": width,
            "depth": depth,
            "skip": skip,
            "widths": widths,
            "arch": arch,
            "detail_width": detail_width,
            "detail_depth": detail_depth,
            "inner": inner,
        }
        self.autoencoder = build_purifier(**self.hyperparameters)
        self.meta: dict[str, Any] = dict(meta or {})
        self.requires_grad_(False)
        self.eval()

    @property
    def channels(self) -> int:
        return self.autoencoder.in_channels

    def train(self, mode: bool = True) -> ReconstructiveDefense:
        """Kept in eval mode: the defense is frozen at inference and while a classifier trains."""
        return super().train(False)

    def purify(self, images: torch.Tensor) -> torch.Tensor:
        """Reconstruct a floating ``(N, C, H, W)`` batch in [0, 1]; any H, W."""
        height, width = images.shape[-2:]
        stride = self.autoencoder.stride
        pad_h, pad_w = (-height) % stride, (-width) % stride
        param_dtype = next(self.autoencoder.parameters()).dtype
        x = images.to(param_dtype)
        if stride == 1:  # any size: nothing to pad, and export sees no size arithmetic
            return self.autoencoder(x).to(images.dtype)
        x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")  # unconditional: no shape branch for export
        return self.autoencoder(x)[..., :height, :width].to(images.dtype)

    @classmethod
    def from_pretrained(
        cls,
        pretrained_model_name_or_path: str | Path,
        *,
        revision: str | None = None,
        **kwargs: Any,
    ) -> ReconstructiveDefense:
        """Load weights by registered name, Hugging Face hub repo id, or local folder.

        Args:
            pretrained_model_name_or_path: a name from :func:`~recondefense.list_weights`, a hub
                repo id such as ``"someone/their-defense"``, or a folder written by ``save_pretrained``.
            revision: hub branch, tag or commit (hub repo ids only).
            kwargs: passed to ``huggingface_hub.PyTorchModelHubMixin.from_pretrained`` (``cache_dir``,
                ``local_files_only``, ``token``, ``map_location``, ...).

        Raises:
            FileNotFoundError: not a registered name, not a folder, and not on the hub or in its cache.
            ValueError: a corrupt weights file or a config.json of another version.
        """
        key = str(pretrained_model_name_or_path)
        if key in list_weights():
            return cls._mixin_load(get_weights(key).path(), **kwargs)
        if os.path.isdir(key):
            return cls._mixin_load(key, **kwargs)
        if key.startswith((".", "/", "~")) or key.count("/") != 1 or os.sep != "/" and os.sep in key:
            raise FileNotFoundError(
                f"cannot load {key!r}: not a registered name ({list_weights() or 'none shipped'}), "
                "not an existing folder, and not a hub repo id of the form 'owner/name'"
            )
        try:
            return cls._mixin_load(key, revision=revision, **kwargs)
        except (OSError, ValueError) as err:
            if isinstance(err, WeightsError):
                raise
            offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False")
            hint = " (HF_HUB_OFFLINE is set and the repo is not in the local hub cache)" if offline else ""
            raise FileNotFoundError(
                f"cannot load {key!r} from the Hugging Face hub{hint}: {type(err).__name__}: {err}"
            ) from err

    def generate_model_card(self, *args: Any, **kwargs: Any) -> ModelCard:
        """The model card ``save_pretrained`` and ``push_to_hub`` write, rendered from :attr:`meta`: classifier,
        data, attack, network, guidance, the command or Python call that trained it, and its validation table."""
        meta = self.meta
        lines = [
            "# Reconstructive defense",
            "",
            "A purifier for `recondefense` (Patrick et al., WACV-W 2022, plus the options named below): "
            "`ReconstructiveDefense.from_pretrained(...)` or `Defended(model, defense)`.",
            "",
        ]
        facts = {
            "Classifier (frozen discriminator)": meta.get("classifier"),
            "Data": meta.get("dataset"),
            "Attack making the triplets": meta.get("attack"),
            "Network": ", ".join(f"{k} {v}" for k, v in self.hyperparameters.items() if v is not None),
            "Guidance": meta.get("guidance"),
            "Clean-consistency weight": meta.get("clean_weight"),
            "Clean fraction": meta.get("clean_fraction"),
            "Adaptive triplets": meta.get("adaptive"),
            "Input normalization of the classifier": None
            if meta.get("input_mean") is None
            else f"mean {meta.get('input_mean')}, std {meta.get('input_std')}",
            "Trained by": f"`{meta['command']}`" if meta.get("command") else None,
            "Composed from": None
            if not meta.get("composed_from")
            else f"the gate of `{meta['composed_from']['gate']}` (trained by `{meta.get('gate_command')}`) and the "
            f"purifier of `{meta['composed_from']['inner']}` (trained by `{meta.get('inner_command')}`)",
            "Epochs trained": meta.get("epochs_trained"),
            "Compute": meta.get("compute"),
        }
        lines += [f"- {k}: {v}" for k, v in facts.items() if v is not None]
        validation = meta.get("validation") or {}
        if validation:
            lines += ["", "## Validation (attack aimed at the classifier alone)", "", "| metric | value |", "|---|---|"]
            lines += [f"| {k} | {v:.4f} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in validation.items()]
        if meta.get("train_config"):
            lines += ["", "## Full training configuration", "", "```"]
            lines += [f"{k}: {v}" for k, v in meta["train_config"].items()]
            lines += ["```"]
        data = self._hub_mixin_info.model_card_data
        return ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(lines) + "\n")

    @classmethod
    def _mixin_load(cls, model_id: str | Path, **kwargs: Any) -> ReconstructiveDefense:
        """``PyTorchModelHubMixin.from_pretrained``, with a config.json that is not a JSON object refused."""
        try:
            return super().from_pretrained(model_id, **kwargs)
        except (AttributeError, TypeError) as err:  # the mixin iterates config.json as a dict
            raise ConfigError(f"{model_id}: config.json must hold a JSON object ({err})") from err

    @classmethod
    def _from_pretrained(
        cls,
        *,
        model_id: str,
        revision: str | None,
        cache_dir: str | Path | None,
        force_download: bool,
        local_files_only: bool,
        token: str | bool | None,
        config: dict | None = None,
        map_location: str = "cpu",
        **model_kwargs: Any,
    ) -> ReconstructiveDefense:
        # Called by the mixin with config.json already parsed. Everything is checked before any allocation:
        # the config's types and ranges, the network's size (built on the meta device), then the safetensors
        # header's names and shapes; only then are the tensors read, and non-finite ones refused.
        model_kwargs.pop("strict", None)
        if config is None:
            raise FileNotFoundError(f"{model_id}: config.json is missing; save weights with save_pretrained()")
        kwargs = _validated_config(config, model_id, set(cls._hub_mixin_init_parameters))
        if os.path.isdir(model_id):
            model_file = os.path.join(model_id, SAFETENSORS_FILE)
            if not os.path.isfile(model_file):
                raise FileNotFoundError(
                    f"{model_id}: {SAFETENSORS_FILE} is missing (only safetensors weights are read)"
                )
        else:
            model_file = hf_hub_download(
                repo_id=model_id,
                filename=SAFETENSORS_FILE,
                revision=revision,
                cache_dir=cache_dir,
                force_download=force_download,
                token=token,
                local_files_only=local_files_only,
            )
        with torch.device("meta"):
            expected = cls(**kwargs).state_dict()
        _check_header(model_file, {k: tuple(v.shape) for k, v in expected.items()})
        try:
            state = safetensors.torch.load_file(model_file, device=str(map_location))
        except Exception as err:  # safetensors raises its own error types for truncated/garbled files
            raise CorruptWeightsError(f"{model_file}: corrupt safetensors file ({err})") from err
        bad = sorted(k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all())
        if bad:
            raise NonFiniteWeightsError(f"{model_file}: NaN or Inf values in {bad[:5]}")
        model = cls(**kwargs)
        model.load_state_dict(state, strict=True)
        return model.to(map_location)


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


def _validated_config(config: Any, source: str, known: set[str]) -> dict[str, Any]:
    """The constructor arguments of a config.json after checking types, ranges and size (nothing allocated).

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
    kwargs = dict(config)
    try:
        with torch.device("meta"):
            size = sum(p.numel() for p in ReconstructiveDefense(**kwargs).parameters())
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
    try:
        with safetensors.safe_open(model_file, framework="pt") as f:
            found = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    except Exception as err:  # safetensors raises its own error types for truncated/garbled files
        raise CorruptWeightsError(f"{model_file}: corrupt safetensors file ({err})") from err
    missing, extra = sorted(set(expected) - set(found)), sorted(set(found) - set(expected))
    shapes = sorted(k for k in set(found) & set(expected) if found[k] != expected[k])
    if missing or extra or shapes:
        raise WeightsMismatchError(
            f"{model_file}: weights do not match config.json (missing {missing[:5]}, unexpected {extra[:5]}, "
            f"other shapes {[(k, found[k], expected[k]) for k in shapes[:5]]})"
        )


class Defended(nn.Module):
    """Put a defense in front of a classifier: a drop-in replacement taking the model's own inputs.

    ``Defended(model)(x) == model(normalize(defense(unnormalize(x))))``. With ``mean=None`` and
    ``std=None`` the model takes [0, 1] pixels directly (the RobustBench/torchattacks/foolbox
    convention), so peer attacks can be pointed at the defended model.

    Args:
        model: any classifier ``nn.Module``; exposed as ``.model``.
        defense: a pixel-space defense (``ReconstructiveDefense`` or a baseline); None loads the
            default shipped ImageNet weights.
        mean, std: per-channel normalization the model expects, or None for pixel-space models.

    Shape: whatever ``model`` takes (``(N, C, H, W)`` images normalized with ``mean``/``std``).

    Normalized inputs that un-normalize outside [0, 1] (``torch.randn`` from a shape probe, an export script
    or a benchmark) are clamped to [0, 1] with a one-time warning instead of refused; the clamp is part of the
    traced graph, so ``torch.export``, ONNX and ``torch.compile(fullgraph=True)`` see the same computation.
    """

    def __init__(
        self,
        model: nn.Module,
        defense: nn.Module | None = None,
        *,
        mean: Sequence[float] | None = IMAGENET_MEAN,
        std: Sequence[float] | None = IMAGENET_STD,
    ) -> None:
        super().__init__()
        if not isinstance(model, nn.Module):
            raise TypeError(f"expected the classifier as an nn.Module, got {type(model).__name__}")
        normalization = check_normalization(mean, std)
        if defense is None:
            if DEFAULT_IMAGENET_WEIGHTS not in list_weights():
                raise ValueError(
                    f"Defended(model) loads the default weights {DEFAULT_IMAGENET_WEIGHTS!r}, which this version "
                    f"does not ship (shipped: {list_weights() or 'none'}); pass one: "
                    "Defended(model, ReconstructiveDefense.from_pretrained(...))"
                )
            defense = ReconstructiveDefense.from_pretrained(DEFAULT_IMAGENET_WEIGHTS)
        if not isinstance(defense, nn.Module):
            raise TypeError(f"expected the defense as an nn.Module, got {type(defense).__name__}")
        self.model = model
        self.defense = defense.eval()
        self.normalized = normalization is not None
        self._warned_range = False
        if normalization is not None:
            mean_t = torch.as_tensor(normalization[0], dtype=torch.float32).view(-1, 1, 1)
            std_t = torch.as_tensor(normalization[1], dtype=torch.float32).view(-1, 1, 1)
            self.register_buffer("mean", mean_t, persistent=False)
            self.register_buffer("std", std_t, persistent=False)

    @classmethod
    def from_classifier(cls, spec: str, defense: nn.Module | str | None = None) -> Defended:
        """A defended classifier by name, normalization read from the classifier's own metadata.

        ``spec`` is any :func:`recondefense.classifiers.load_classifier` spec, e.g.
        ``"torchvision:resnet50:IMAGENET1K_V2"`` (mean/std from the weights enum), ``"timm:<name>"``
        (``pretrained_cfg``) or ``"imagenet-efficientnet_lite0"``. The result takes **[0, 1] pixels**
        (``(N, 3, H, W)``) and normalizes inside, so no mean/std is typed by hand.

        Args:
            defense: weights name, hub id, folder or module (None: the default ImageNet weights).
        """
        from .classifiers import load_classifier

        if isinstance(defense, str):
            defense = ReconstructiveDefense.from_pretrained(defense)
        return cls(load_classifier(spec), defense, mean=None, std=None)

    def train(self, mode: bool = True) -> Defended:
        """Switch the classifier's mode; the defense stays frozen in eval mode."""
        self.training = mode
        self.model.train(mode)
        self.defense.eval()
        return self

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        """Un-normalize, purify, re-normalize, classify; extra arguments go to the model."""
        if self.normalized:
            pixels = x * self.std.to(x.dtype) + self.mean.to(x.dtype)
            purified = self._purify(pixels)
            return self.model((purified - self.mean.to(x.dtype)) / self.std.to(x.dtype), *args, **kwargs)
        return self.model(self.defense(x), *args, **kwargs)

    def _purify(self, pixels: torch.Tensor) -> torch.Tensor:
        """The defense on un-normalized ``pixels`` clamped to [0, 1], reading the values back to the host at most
        once per eager call: their range (outside [0, 1]: warned once) and, in place of a :class:`PixelDefense`'s
        own check, NaN (Inf is clamped)."""
        clamped = pixels.clamp(0, 1)
        defense_checks = isinstance(self.defense, PixelDefense)  # it would read the values back itself
        if not pixels.is_floating_point() or is_tracing(pixels) or (self._warned_range and not defense_checks):
            return self.defense(clamped)
        lo, hi = _value_range(pixels)
        tolerance = range_tolerance(pixels.dtype)
        if not self._warned_range and (lo < -tolerance or hi > 1 + tolerance):
            warnings.warn(
                f"Defended: the input un-normalizes to pixels in [{lo:.3g}, {hi:.3g}], outside "
                "[0, 1]; they are clamped (warned once). Feed images normalized with this model's mean/std.",
                stacklevel=3,
            )
            self._warned_range = True
        if not defense_checks:
            return self.defense(clamped)
        if math.isnan(lo) or math.isnan(hi):
            raise ValueError("images contain NaN or Inf values")  # the defense's own check, on the clamped pixels
        with _values_checked(clamped):
            return self.defense(clamped)
