"""``fit(classifier, dataset)``: the training loop from Python, with your own classifier and dataset objects."""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from ..classifiers import Normalized, check_normalization
from ..data import UNLABELLED, label_with_classifier
from ..defense import ReconstructiveDefense
from .config import TrainConfig
from .loop import _Setup, train

__all__ = ["fit"]

#: Share of ``train_data`` held out for validation when ``fit`` gets no ``val_data`` (at most 500 items).
VAL_SHARE = 0.1


class _Images(Dataset):
    """A user's dataset as ``(image (C, H, W) float in [0, 1], label int)`` items.

    Items may be an image or a tuple/list whose first element is the image and second (if any) an integer
    label; images may be tensors (float in [0, 1] or uint8) or PIL images. Without labels every item gets
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
    from torchvision.transforms.v2 import functional as F

    if not isinstance(image, torch.Tensor):
        image = F.to_image(image)  # PIL or numpy HWC
    if image.dtype == torch.uint8:
        return image.float() / 255
    if not image.is_floating_point() or image.ndim != 3:
        raise ValueError(
            f"expected images as (C, H, W) float in [0, 1], uint8 or PIL, got {image.dtype} {tuple(image.shape)}"
        )
    return image.float()


def _has_labels(dataset: Dataset) -> bool:
    item = dataset[0]
    if not isinstance(item, (tuple, list)) or len(item) < 2:
        return False
    label = item[1]
    if isinstance(label, int) and label == UNLABELLED:  # e.g. recondefense.data.UnlabelledFolder
        return False
    return (
        isinstance(label, int)
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
            tensors in [0, 1], uint8 tensors or PIL images of one size. Without integer labels, the classifier's
            clean prediction is the label (what the defense must preserve).
        val_data: the same for validation; default: a seeded :data:`VAL_SHARE` of ``train_data`` (at most 500).
        mean, std: the normalization ``classifier`` expects (None: it takes [0, 1] pixels).
        defense: weights to start from (a shipped name, hub id, folder or a ``ReconstructiveDefense``); its
            architecture replaces ``config``'s. None: a new network as ``config`` says.
        config: every other setting (:class:`TrainConfig`; ``data`` and ``classifier`` are ignored). Under
            ``torchrun`` the run is distributed as with the CLI.

    Returns:
        The trained defense, loaded from ``<config.out>/final``.

    Example:
        >>> defense = fit(resnet, ImageFolder("photos"), mean=MEAN, std=STD,  # doctest: +SKIP
        ...               defense="imagenet-efficientnet_lite0_lite2-gated2-pgd", config=TrainConfig(epochs=2, out="runs/mine"))
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
        **{k: net[k] for k in ("arch", "width", "depth", "skip", "detail_width", "detail_depth", "inner") if k in net},
    }
    if isinstance(defense, str):
        changes["init_from"] = defense
    config = dataclasses.replace(config, **changes)
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

    def setup(device: torch.device) -> _Setup:
        model = pixel_classifier.to(device)
        sets = [s if s.labelled else label_with_classifier(s, model) for s in (train_set, val_set)]
        return _Setup([model], [f"python:{name}"], sets[0], sets[1], start, config.data)

    return ReconstructiveDefense.from_pretrained(train(config, _setup=setup))
