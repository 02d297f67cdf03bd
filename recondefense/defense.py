"""``ReconstructiveDefense`` (the paper's AE as a transform with hub loading) and ``Defended``."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

import torch
from huggingface_hub import ModelCard, PyTorchModelHubMixin

from .errors import (  # noqa: F401  (re-exported with the loading checks: they were all importable from here)
    ConfigError,
    CorruptWeightsError,
    InputConventionWarning,
    ModelTooLargeError,
    NonFiniteWeightsError,
    WeightsError,
    WeightsMismatchError,
)
from .loading import (  # noqa: F401
    FORMAT_VERSION,
    MAX_PARAMETERS,
    check_folder,
    check_hub_id,
    config_errors,
    hub_not_found,
    load_checked,
)
from .purifier_config import PurifierConfig
from .purifiers import build_purifier, pad_to_stride
from .transform import PixelDefense, check_pixels
from .weights import DEFAULT_ALIAS, close_names, get_weights, list_weights, set_default_weights

__all__ = [
    "ReconstructiveDefense",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "FORMAT_VERSION",
    "DEFAULT_IMAGENET_WEIGHTS",
]

#: torchvision's ImageNet per-channel mean (RGB, pixels in [0, 1]): the default ``mean`` of :class:`Defended`.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
#: torchvision's ImageNet per-channel standard deviation: the default ``std`` of :class:`Defended`.
IMAGENET_STD = (0.229, 0.224, 0.225)
#: Weights ``Defended(model)`` loads when no defense is given, and what the name ``"default"`` stands for
#: (``from_pretrained("default")``, ``recondefense purify``'s ``--weights``, the mark in ``list_weights()``).
DEFAULT_IMAGENET_WEIGHTS = "imagenet-efficientnet_lite0_lite2-routed23-objects3-mix"


#: What ``scripts/config_variant.py`` may swap into a defense (its meta key), as its card names it.
_VARIANT_PARTS = (
    ("variant_corruption", "its corruption purifier replaced by"),
    ("variant_strong", "its strong purifier replaced by"),
    ("variant_fog", "the fog detector"),
    ("variant_brightness", "the brightness detector"),
    ("variant_snow", "the snow detector"),
)


#: The download options of ``from_pretrained`` that go to the hub (``revision`` is its own argument).
HUB_OPTIONS = ("revision", "cache_dir", "token", "local_files_only", "force_download")


def _default_imagenet_weights() -> str:
    return DEFAULT_IMAGENET_WEIGHTS  # read at each call: the alias follows the constant wherever it is set


set_default_weights(_default_imagenet_weights)


def _looks_like_a_path(key: str) -> bool:
    """A string that can only name a folder: it starts with ``.``, ``/`` or ``~``, is absolute, or has other than
    one ``/`` (a hub id is ``owner/name``)."""
    return (
        key.startswith((".", "/", "~")) or os.path.isabs(key) or key.count("/") > 1 or (os.sep != "/" and os.sep in key)
    )


def _not_found(key: str) -> FileNotFoundError:
    """The error for ``key`` that is no shipped name and no folder (nor, by its form, a hub id): the folder that
    is missing, or the name that is unknown, first; then the closest names."""
    close = close_names(key)
    hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
    if _looks_like_a_path(key):
        return FileNotFoundError(
            f"cannot load {key!r}: no folder {os.path.abspath(os.path.expanduser(key))} (a weights folder holds the "
            f"config.json and model.safetensors that save_pretrained writes){hint}"
        )
    shipped = list_weights()
    return FileNotFoundError(
        f"cannot load {key!r}: no shipped weights of that name{hint} (list_weights() or `recondefense weights` "
        f"names the {len(shipped)} shipped; {DEFAULT_ALIAS!r} is {shipped.default!r}), no folder "
        f"{os.path.abspath(key)}, and not a hub repo id 'owner/name'"
    )


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
    ``"detail"``, ``"gated"``, ``"routed"``). Inputs of any height and width
    are padded (replicate) to the AE's stride multiple and cropped back. Parameters are frozen and
    the module stays in eval mode (``.train()`` does not switch it); gradients still flow to the
    input, so attacks can go through it. Train the AE itself with :mod:`recondefense.train`.

    Shape: ``(C, H, W)`` or ``(N, C, H, W)`` -> same shape. Values: float in [0, 1] (or ``uint8``,
    scaled by 1/255, returned as ``float32``) -> [0, 1]; ``float16``/``bfloat16`` inputs are returned
    in their dtype.

    Args:
        in_channels, width, depth, skip, widths, arch, detail_width, detail_depth, inner, bypass_below, corruption_width, corruption_depth, pass_smoothing, contrast_floor, contrast_target, strong_widths, strong_above, black_point_floor, corruption_strength, corruption_noise_range, deblur_width, deblur_depth, deblur_sharpness_range, brightness_veto, deblur_unsharp, deblur_ratio_range, impulse_range, impulse_noise_range, veto_black_point, veto_clipped, fog_range, fog_width, fog_yields_to_gate, gate_steep_opening, veto_to_floor, brightness_range, brightness_width, snow_range, snow_width: the purifier's
            hyper-parameters, the fields of :class:`~recondefense.purifier_config.PurifierConfig` (documented there, and
            their defaults: the paper's AE, width 16, depth 3, the skip on); listed one by one because the hub mixin
            writes config.json from them. :meth:`from_config` takes a ``PurifierConfig``.
        meta: free-form metadata saved in config.json (dataset, classifier, mean/std, metrics).
        format_version: config layout version; anything but :data:`FORMAT_VERSION` is refused.

    Example:
        >>> defense = ReconstructiveDefense.from_pretrained("fashionmnist-smallcnn-pgd")  # doctest: +SKIP
        >>> clean = defense(images)  # doctest: +SKIP
    """

    def __init__(
        self,
        in_channels: int = PurifierConfig.in_channels,
        width: int = PurifierConfig.width,
        depth: int = PurifierConfig.depth,
        skip: bool = PurifierConfig.skip,
        widths: Sequence[int] | None = PurifierConfig.widths,
        meta: dict | None = None,
        format_version: int = FORMAT_VERSION,
        arch: str = PurifierConfig.arch,
        detail_width: int = PurifierConfig.detail_width,
        detail_depth: int = PurifierConfig.detail_depth,
        inner: str = PurifierConfig.inner,
        bypass_below: float | Sequence[float] = PurifierConfig.bypass_below,
        corruption_width: int = PurifierConfig.corruption_width,
        corruption_depth: int = PurifierConfig.corruption_depth,
        pass_smoothing: float = PurifierConfig.pass_smoothing,
        contrast_floor: float = PurifierConfig.contrast_floor,
        contrast_target: float = PurifierConfig.contrast_target,
        strong_widths: Sequence[int] | None = PurifierConfig.strong_widths,
        strong_above: float = PurifierConfig.strong_above,
        black_point_floor: float = PurifierConfig.black_point_floor,
        corruption_strength: float = PurifierConfig.corruption_strength,
        corruption_noise_range: Sequence[float] = PurifierConfig.corruption_noise_range,
        deblur_width: int = PurifierConfig.deblur_width,
        deblur_depth: int = PurifierConfig.deblur_depth,
        deblur_sharpness_range: Sequence[float] | None = PurifierConfig.deblur_sharpness_range,
        brightness_veto: float = PurifierConfig.brightness_veto,
        deblur_unsharp: Sequence[float] | None = PurifierConfig.deblur_unsharp,
        deblur_ratio_range: Sequence[float] | None = PurifierConfig.deblur_ratio_range,
        impulse_range: Sequence[float] | None = PurifierConfig.impulse_range,
        impulse_noise_range: Sequence[float] | None = PurifierConfig.impulse_noise_range,
        veto_black_point: float = PurifierConfig.veto_black_point,
        veto_clipped: float = PurifierConfig.veto_clipped,
        fog_range: Sequence[float] | None = PurifierConfig.fog_range,
        fog_width: int = PurifierConfig.fog_width,
        fog_yields_to_gate: bool = PurifierConfig.fog_yields_to_gate,
        gate_steep_opening: Sequence[float] | None = PurifierConfig.gate_steep_opening,
        veto_to_floor: bool = PurifierConfig.veto_to_floor,
        brightness_range: Sequence[float] | None = PurifierConfig.brightness_range,
        brightness_width: int = PurifierConfig.brightness_width,
        snow_range: Sequence[float] | None = PurifierConfig.snow_range,
        snow_width: int = PurifierConfig.snow_width,
    ) -> None:
        if format_version != FORMAT_VERSION:
            raise ValueError(
                f"config.json has format_version={format_version!r}, this recondefense reads version {FORMAT_VERSION}: "
                "upgrade recondefense or re-export the weights"
            )
        super().__init__()
        self.arch = arch
        #: the network's hyper-parameters (what config.json holds besides meta and version)
        arguments = locals()  # the signature lists every field (the hub mixin writes config.json from it)
        self.purifier_config = PurifierConfig(**{f.name: arguments[f.name] for f in fields(PurifierConfig)})
        #: :attr:`purifier_config` as a dict (``widths`` a list)
        self.hyperparameters: dict[str, Any] = self.purifier_config.as_dict()
        self.autoencoder = build_purifier(self.purifier_config)  # (ValueError: an unknown arch)
        self.meta: dict[str, Any] = dict(meta or {})
        self.requires_grad_(False)
        self.eval()

    @classmethod
    def from_config(cls, config: PurifierConfig, meta: dict | None = None) -> ReconstructiveDefense:
        """A new (untrained) defense holding the purifier ``config`` describes, with ``meta`` for its config.json."""
        return cls(**config.as_dict(), meta=meta)

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
        param_dtype = next(self.autoencoder.parameters()).dtype
        x = pad_to_stride(images.to(param_dtype), stride)
        if x.device.type == "cpu":  # oneDNN runs these thin convolutions about twice as fast channels-last
            x = x.contiguous(memory_format=torch.channels_last)
        out = self.autoencoder(x)
        if stride != 1:
            out = out[..., :height, :width]
        return out.to(images.dtype).contiguous()  # the usual layout back, whatever the purifier computed in

    @torch.no_grad()
    def gate(self, images: torch.Tensor) -> torch.Tensor | None:
        """How far a gated purifier (``arch="gated"``) opens on each image: ``g(x)`` in (0, 1), where the output is
        ``x + g(x) * (P(x) - x)`` (near 0: the image passes almost unchanged); for a routed one (``"routed"``) the
        share sent to its purifiers, ``1 - p0`` (less, for an image it cleaned of salt-and-pepper dots, by its share
        of that cleaning: :meth:`~recondefense.routing.RouteMixture.gate_value`). None for the other architectures.

        Shape: ``(C, H, W)`` or ``(N, C, H, W)`` in [0, 1] (checked as :meth:`forward` checks it) -> ``(N,)``.
        """
        batch = check_pixels(images, channels=self.channels, device=self._device())
        if not hasattr(self.autoencoder, "gate_value"):
            return None
        param_dtype = next(self.autoencoder.parameters()).dtype
        padded = pad_to_stride(batch.to(param_dtype), self.autoencoder.stride)
        return self.autoencoder.gate_value(padded).float()

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
            pretrained_model_name_or_path: a name from :func:`~recondefense.list_weights` (``"default"``: the
                default ImageNet weights, :data:`DEFAULT_IMAGENET_WEIGHTS`), a hub repo id such as
                ``"someone/their-defense"``, or a folder written by ``save_pretrained``.
            revision: hub branch, tag or commit (hub repo ids only).
            kwargs: passed to ``huggingface_hub.PyTorchModelHubMixin.from_pretrained`` (``cache_dir``,
                ``local_files_only``, ``token``, ``map_location``, ...).

        Raises:
            FileNotFoundError: not a registered name, not a folder, and not on the hub or in its cache (the message
                says which it looked like, with the closest shipped names).
            ValueError: an empty name, a corrupt weights file or a config.json of another version.
        """
        key = str(pretrained_model_name_or_path)
        if not key.strip():
            raise ValueError(
                f"an empty weights name: pass a shipped name (list_weights()), {DEFAULT_ALIAS!r}, a hub repo id or a "
                "weights folder"
            )
        if key == DEFAULT_ALIAS and not os.path.isdir(key):
            key = DEFAULT_IMAGENET_WEIGHTS
            if key not in list_weights():
                raise FileNotFoundError(
                    f"{DEFAULT_ALIAS!r} stands for the default weights {key!r}, which this install does not ship "
                    f"(shipped: {', '.join(list_weights()) or 'none'}); name one of them"
                )
        if key in list_weights() or os.path.isdir(key):
            folder = get_weights(key).path() if key in list_weights() else key
            check_folder(folder)  # config.json present and JSON, before the mixin reads it
            return cls._mixin_load(folder, **kwargs)
        if _looks_like_a_path(key) or "/" not in key:
            raise _not_found(key)
        hub = {k: kwargs[k] for k in HUB_OPTIONS if k in kwargs}
        check_hub_id(key, revision=revision, **hub)  # fails fast offline or unreachable, naming folder and hub id
        try:
            return cls._mixin_load(key, revision=revision, **kwargs)
        except (OSError, ValueError) as err:
            if isinstance(err, WeightsError):
                raise
            raise hub_not_found(key, f"{type(err).__name__}: {err}") from err

    def _save_pretrained(self, save_directory: Path) -> None:
        """The weights (the hub mixin's safetensors), then the card: written on every save, since the mixin keeps a
        README.md that exists, which would leave the card of whatever was saved in the folder before."""
        super()._save_pretrained(save_directory)
        self.generate_model_card().save(Path(save_directory) / "README.md")

    def generate_model_card(self, *args: Any, **kwargs: Any) -> ModelCard:
        """The model card ``save_pretrained`` and ``push_to_hub`` write, rendered from :attr:`meta`: classifier,
        data and its photo sources (packages, licences), attack, network, guidance, the command or Python call that
        trained it, and its validation table."""
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
            f"purifier of `{meta['composed_from']['inner']}` (trained by `{meta.get('inner_command')}`)"
            + (
                f" and the corruption purifier of `{meta['composed_from']['corruption']}` (trained by "
                f"`{meta.get('corruption_command')}`)"
                if meta["composed_from"].get("corruption")
                else ""
            )
            + (
                f" and the strong purifier of `{meta['composed_from']['strong']}` (trained by "
                f"`{meta.get('strong_command')}`), on the images the gate flags"
                if meta["composed_from"].get("strong")
                else ""
            ),
            "Inference settings changed from": None
            if not meta.get("variant_of")
            else f"`{meta['variant_of']}` ("
            + (
                "; ".join(
                    f"{part} `{meta[key]}`, trained by `{meta.get(key + '_command')}`"
                    for key, part in _VARIANT_PARTS
                    if meta.get(key)
                )
                or "the same tensors"
            )
            + f"), by `{meta.get('variant_command')}`",
            "Epochs trained": meta.get("epochs_trained"),
            "Held-out corruptions (never trained on)": ", ".join(meta["held_out_corruptions"])
            if meta.get("held_out_corruptions")
            else None,
            "Compute": meta.get("compute"),
        }
        lines += [f"- {k}: {v}" for k, v in facts.items() if v is not None]
        validation = meta.get("validation") or {}
        if validation:
            lines += ["", "## Validation (attack aimed at the classifier alone)", ""]
            if meta.get("validation_note"):
                lines += [f"**Warning:** {meta['validation_note']}.", ""]
            lines += ["| metric | value |", "|---|---|"]
            lines += [f"| {k} | {v:.4f} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in validation.items()]
        if meta.get("data_sources"):
            lines += ["", "## Photo sources (Debian packages, licences)", ""]
            lines += [f"- {source}" for source in meta["data_sources"]]
        if meta.get("train_config"):
            lines += ["", "## Full training configuration", "", "```"]
            lines += [f"{k}: {v}" for k, v in meta["train_config"].items()]
            lines += ["```"]
        data = self._hub_mixin_info.model_card_data
        return ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(lines) + "\n")

    @classmethod
    def _mixin_load(cls, model_id: str | Path, **kwargs: Any) -> ReconstructiveDefense:
        """``PyTorchModelHubMixin.from_pretrained``, with a config.json that is not a JSON object refused."""
        config_file = f"config.json of the hub repo {model_id}"  # a folder's was read by check_folder
        try:
            with config_errors(config_file):
                return super().from_pretrained(model_id, **kwargs)
        except (AttributeError, TypeError) as err:  # the mixin iterates config.json as a dict
            raise ConfigError(f"{model_id}: config.json must hold a JSON object ({err})") from err

    @classmethod
    def _from_pretrained(
        cls, *, model_id: str, config: dict | None = None, map_location: str = "cpu", **kwargs: Any
    ) -> ReconstructiveDefense:
        # Called by the mixin with config.json already parsed (``config``; ``kwargs`` also holds its values, unused)
        # and the download options; every check is in recondefense.loading.
        hub = {k: kwargs[k] for k in HUB_OPTIONS if k in kwargs}
        known = set(cls._hub_mixin_init_parameters)
        return load_checked(cls, config, model_id, known, map_location=map_location, **hub)
