"""``fit(classifier, dataset)``: the training loop from Python, with your own classifier and dataset objects."""

from __future__ import annotations

import dataclasses
import numbers
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from ..classifiers import Normalized, check_normalization
from ..data import UNLABELLED, label_with_classifier
from ..defense import ReconstructiveDefense
from .architecture import start_network_options, start_settings
from .checkpoints import CHECKPOINT, load_checkpoint
from .config import TrainConfig, validate_config
from .loop import train
from .network import as_defense, classify_probe, first_item
from .setup import Setup

__all__ = ["fit"]

#: Share of ``train_data`` held out for validation when ``fit`` gets no ``val_data`` (at most 500 items).
VAL_SHARE = 0.1


class _Images(Dataset):
    """A user's dataset as ``(image (C, H, W) float in [0, 1], label int)`` items.

    Items may be an image or a tuple/list whose first element is the image and second (if any) an integer
    label; images may be ``(C, H, W)`` tensors (float in [0, 1] or uint8), PIL images or numpy arrays (read as
    torchvision reads them: ``(H, W, C)`` or ``(H, W)``). Without labels every item gets
    :data:`~recondefense.data.UNLABELLED`, later replaced by the classifier's clean prediction.
    """

    def __init__(self, dataset: Dataset, indices: list[int] | None = None, labelled: bool = True) -> None:
        self.dataset, self.labelled = dataset, labelled
        self.indices = list(range(len(dataset))) if indices is None else indices  # type: ignore[arg-type]

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int] | None:
        item = self.dataset[self.indices[index]]
        if item is None:  # an undecodable file of a recondefense folder dataset: skipped and counted
            return None
        image, label = (
            (item[0], item[1] if len(item) > 1 else UNLABELLED)
            if isinstance(item, (tuple, list))
            else (item, UNLABELLED)
        )
        return _to_pixels(image), int(label) if self.labelled else UNLABELLED


def _to_pixels(image: Any) -> torch.Tensor:
    """One item's image as ``(C, H, W)`` float; the shape and type checks are cheap (run on every item).

    Raises:
        TypeError: not a tensor, PIL image or numpy array.
        ValueError: a dtype other than float or uint8, not 3 dimensions, or channels last.
    """
    from PIL import Image
    from torchvision.transforms.v2 import functional as F

    if isinstance(image, np.ndarray):
        if image.ndim == 3 and image.shape[0] in (1, 3) and image.shape[-1] not in (1, 3, 4):
            raise ValueError(
                f"numpy images are read as (H, W, C), as torchvision reads them; this one looks like (C, H, W) "
                f"{image.shape}: pass torch.from_numpy(image) instead"
            )
        image = F.to_image(image)
    elif isinstance(image, Image.Image):
        image = F.to_image(image)
    elif not isinstance(image, torch.Tensor):
        raise TypeError(f"expected images as (C, H, W) tensors, PIL images or numpy arrays, got {type(image).__name__}")
    if image.dtype == torch.uint8:
        image = image.float() / 255
    elif not image.is_floating_point():
        raise ValueError(f"expected images as float in [0, 1] or uint8, got {image.dtype} {tuple(image.shape)}")
    if image.ndim != 3:
        raise ValueError(f"expected images of shape (C, H, W), got {tuple(image.shape)}")
    if image.shape[0] not in (1, 3) and image.shape[-1] in (1, 3):
        raise ValueError(
            f"expected images of shape (C, H, W), got {tuple(image.shape)}, channels last: pass image.permute(2, 0, 1)"
        )
    return image.float()


def _check_first(dataset: _Images, name: str, classifier: nn.Module, spec: str) -> int:
    """Check the first decodable item of ``dataset`` (of the first 64) up front: its values in [0, 1], that the
    classifier takes it and its label is one of the classifier's classes; returns the image's channel count.

    Raises:
        ValueError: an image out of range, one the classifier cannot take, or a label outside its classes.
    """
    image, label = first_item(dataset, name)
    low, high = image.min().item(), image.max().item()
    if low < 0 or high > 1:
        raise ValueError(
            f"{name}: expected float images in [0, 1], got values from {low:g} to {high:g}: divide 0-255 values "
            "by 255 (or pass uint8 tensors)"
        )
    device = next(classifier.parameters(), torch.empty(0)).device
    classes = classify_probe(spec, classifier, image, device).shape[-1]
    if label != UNLABELLED and not 0 <= label < classes:
        raise ValueError(
            f"{name}: label {label} is outside the classifier's {classes} classes (0 to {classes - 1}): pass labels "
            "of the classes the classifier was trained on, or no labels (its clean predictions are used)"
        )
    return image.shape[0]


def _has_labels(dataset: Dataset) -> bool:
    item = dataset[0]
    if not isinstance(item, (tuple, list)) or len(item) < 2:
        return False
    label = item[1]
    if isinstance(label, numbers.Integral) and label == UNLABELLED:  # e.g. recondefense.data.UnlabelledFolder
        return False
    return (
        isinstance(label, numbers.Integral)  # int, numpy integers
        or isinstance(label, torch.Tensor)
        and label.numel() == 1
        and not label.is_floating_point()
    )


def fit(
    classifier: nn.Module,
    train_data: Dataset,
    *,
    val_data: Dataset | None = None,
    mean: tuple[float, ...] | list[float] | None = None,
    std: tuple[float, ...] | list[float] | None = None,
    defense: str | ReconstructiveDefense | None = None,
    config: TrainConfig | None = None,
) -> ReconstructiveDefense:
    """Train a defense for ``classifier`` on ``train_data``; same loop, checkpoints, resume and card as the CLI.

    Args:
        classifier: any ``nn.Module`` returning logits; frozen in place (``eval()``, ``requires_grad_(False)``).
        train_data: map-style dataset of images, or of ``(image, label, ...)`` tuples; images are ``(C, H, W)``
            tensors in [0, 1], uint8 tensors, PIL images or ``(H, W, C)`` numpy arrays, all of one size and of the
            channel count the classifier takes. Without integer labels, the classifier's clean prediction is the
            label (what the defense must preserve). The first image and label are checked up front, every batch's
            sizes and labels as it is read.
        val_data: the same for validation; default: a seeded :data:`VAL_SHARE` of ``train_data`` (at most 500).
        mean, std: the normalization ``classifier`` expects (None: it takes [0, 1] pixels).
        defense: weights to start from (a shipped name, hub id, folder or a ``ReconstructiveDefense``); its
            architecture replaces ``config``'s, and the trained weights keep its settings that no option sets
            (:data:`~recondefense.train.architecture.START_SETTINGS`: the default's dot removal, unsharp mask, black
            point and brightness veto). None: a new network as ``config`` says.
        config: every other setting (:class:`TrainConfig`; ``data`` and ``classifier`` are ignored). Under
            ``torchrun`` the run is distributed as with the CLI.

    Returns:
        The trained defense, loaded from ``<config.out>/final``. When ``config.stop_after_steps`` ends the run
        early, the network as it is in ``<config.out>/checkpoint.safetensors`` (``meta["stopped_after_steps"]`` says
        after how many; no ``final/`` is written): continue with ``dataclasses.replace(config, resume=True)``.

    Raises:
        TypeError: a classifier that is not an ``nn.Module``, or images of another type.
        ValueError: a bad setting (:func:`~recondefense.train.config.validate_config`), empty data, images or
            labels the classifier cannot take, images of different sizes, or start weights that do not match.

    Example:
        >>> defense = fit(resnet, ImageFolder("photos"), mean=MEAN, std=STD,  # doctest: +SKIP
        ...               defense="default", config=TrainConfig(epochs=2, out="runs/mine"))
    """
    if not isinstance(classifier, nn.Module):
        raise TypeError(f"expected the classifier as an nn.Module, got {type(classifier).__name__}")
    check_normalization(mean, std)
    if len(train_data) == 0:  # type: ignore[arg-type]
        raise ValueError("train_data is empty")
    config = config or TrainConfig()
    start = ReconstructiveDefense.from_pretrained(defense) if isinstance(defense, str) else defense
    if start is not None and not isinstance(start, ReconstructiveDefense):
        raise TypeError(f"expected defense as a name, folder or ReconstructiveDefense, got {type(start).__name__}")
    net = start.hyperparameters if start is not None else {}
    name = type(classifier).__name__
    changes: dict[str, Any] = {
        "data": f"python:{type(train_data).__name__}",
        "classifier": f"python:{name}",
        "mean": None if mean is None else tuple(mean),
        "std": None if std is None else tuple(std),
        **(start_network_options(net) if start is not None else {}),
        **({"start_settings": start_settings(net, config)} if start is not None else {}),
    }
    if isinstance(defense, str):
        changes["init_from"] = defense
    config = dataclasses.replace(config, **changes)
    validate_config(config)
    config.extra_meta.setdefault("python_call", f"recondefense.train.fit({name}, {type(train_data).__name__}, ...)")
    pixel_classifier = classifier if mean is None else Normalized(classifier, mean, std)  # type: ignore[arg-type]
    pixel_classifier.eval().requires_grad_(False)
    labelled = _has_labels(train_data)
    if val_data is None:
        order = torch.randperm(len(train_data), generator=torch.Generator().manual_seed(config.seed)).tolist()  # type: ignore[arg-type]
        held = min(500, max(1, int(len(order) * VAL_SHARE)))
        train_set, val_set = _Images(train_data, order[held:], labelled), _Images(train_data, order[:held], labelled)
    else:
        train_set, val_set = _Images(train_data, labelled=labelled), _Images(val_data, labelled=_has_labels(val_data))
    channels = _check_first(train_set, "train_data", pixel_classifier, f"python:{name}")
    if val_data is not None:
        _check_first(val_set, "val_data", pixel_classifier, f"python:{name}")

    def setup(device: torch.device) -> Setup:
        model = pixel_classifier.to(device)
        sets = [s if s.labelled else label_with_classifier(s, model) for s in (train_set, val_set)]
        return Setup([model], [f"python:{name}"], sets[0], sets[1], start, config.data)

    result = train(config, _setup=setup)
    if result.name == CHECKPOINT:  # stop_after_steps ended the run before final/
        return _from_checkpoint(result, channels, config)
    return ReconstructiveDefense.from_pretrained(result)


def _from_checkpoint(path: Path, in_channels: int, config: TrainConfig) -> ReconstructiveDefense:
    """The network in the checkpoint at ``path`` as a defense, its meta saying the run stopped early."""
    state = load_checkpoint(path)
    meta = {
        "dataset": config.data,
        "classifier": config.classifier,
        "stopped_after_steps": state["global_step"],
        "checkpoint": str(path),
        "input_mean": config.mean,
        "input_std": config.std,
    }
    return as_defense(state["model"], in_channels, config, meta)
