"""Labels for unlabelled images: :data:`UNLABELLED`, :func:`label_with_classifier`, which labels a data set
(photo crops, a folder of images) with a classifier's clean predictions, and :func:`label_by_consensus`, which
keeps the images on which several classifiers agree (a stand-in for ground truth where none exists)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ._tensors import stack_images

__all__ = ["UNLABELLED", "Consensus", "label_by_consensus", "label_with_classifier"]

#: Label of an image no classifier has labelled yet (see :func:`label_with_classifier`).
UNLABELLED = -1


class _Relabelled(Dataset):
    """``dataset`` with its labels replaced by stored ones (None items stay None)."""

    #: the labels are a classifier's predictions (training with several classifiers relabels per classifier)
    labelled_by_classifier = True

    def __init__(self, dataset: Dataset, predicted: torch.Tensor) -> None:
        self.dataset = dataset
        self.predicted = predicted  # not named `labels`: the label space is the classifier's, whatever it predicted

    def __len__(self) -> int:
        return len(self.predicted)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int] | None:
        item = self.dataset[index]
        return None if item is None else (item[0], int(self.predicted[index]))


class _ItemsAt:
    """DataLoader collate of indices into ``[(index, dataset[index]), ...]`` (a class: spawned workers pickle it)."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __call__(self, indices: list[int]) -> list[tuple[int, Any]]:
        return [(i, self.dataset[i]) for i in indices]


@torch.no_grad()
def label_with_classifier(
    dataset: Dataset,
    classifier: nn.Module,
    *,
    batch_size: int = 64,
    num_workers: int = 0,
    cache: str | Path | None = None,
) -> Dataset:
    """``dataset`` labelled with ``classifier``'s top-1 prediction on each clean image (what the defense preserves).

    Runs the classifier once over ``dataset`` in batches of ``batch_size`` on the classifier's device (images
    read by ``num_workers`` DataLoader workers) and stores only the labels; images are read from ``dataset``
    again on access (:class:`PhotoCrops` regenerates them). ``classifier`` takes ``(N, C, H, W)`` in [0, 1]
    (a :func:`~recondefense.classifiers.load_classifier` model). Undecodable (None) items stay None. The
    classifier runs in eval mode (BatchNorm statistics untouched); each module's previous mode is restored after.

    ``cache``: a ``.npy`` file of the labels, for runs that restart: read back instead of labelling when it holds as
    many labels as ``dataset`` has images, written after labelling otherwise. The caller names it for the data and
    classifier (nothing else is checked).

    Returns:
        A dataset of ``(image, predicted label int)``, same length and order as ``dataset``.
    """
    if cache is not None and Path(cache).is_file():
        stored = torch.from_numpy(np.load(cache, allow_pickle=False)).long()
        if stored.shape == (len(dataset),):
            return _Relabelled(dataset, stored)
    predicted = _predictions(dataset, classifier, batch_size, num_workers)
    if cache is not None:
        partial = Path(cache).with_suffix(".partial.npy")  # a run killed while writing leaves no half file behind
        partial.parent.mkdir(parents=True, exist_ok=True)
        np.save(partial, predicted.numpy(), allow_pickle=False)
        partial.replace(cache)
    return _Relabelled(dataset, predicted)


def _predictions(dataset: Dataset, classifier: nn.Module, batch_size: int, num_workers: int) -> torch.Tensor:
    """``classifier``'s top-1 on each item of ``dataset``, :data:`UNLABELLED` for None items; shape ``(len,)``."""
    device = next(classifier.parameters(), torch.empty(0)).device
    predicted = torch.full((len(dataset),), UNLABELLED, dtype=torch.long)
    loader = DataLoader(
        range(len(dataset)),
        batch_size=batch_size,
        num_workers=num_workers,
        collate_fn=_ItemsAt(dataset),
    )
    modes = {module: module.training for module in classifier.modules()}
    classifier.eval()  # training mode would update BatchNorm statistics and make labels depend on the batch
    try:
        for items in loader:
            kept = [(i, item[0]) for i, item in items if item is not None]
            if kept:
                images = stack_images([image for _, image in kept]).to(device)
                predicted[[i for i, _ in kept]] = classifier(images).argmax(1).cpu()
    finally:
        for module, training in modes.items():
            module.training = training
    return predicted


class Consensus(Dataset):
    """The images of a data set on which every classifier predicted the same class, labelled with it.

    ``kept``: indices into the original data set; ``total``: its length (``total - len(self)`` were dropped).
    """

    def __init__(self, dataset: Dataset, kept: torch.Tensor, labels: torch.Tensor) -> None:
        self.dataset, self.kept, self.labels, self.total = dataset, kept, labels, len(dataset)

    def __len__(self) -> int:
        return len(self.kept)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.dataset[int(self.kept[index])][0], int(self.labels[index])

    @property
    def dropped(self) -> int:
        """Images dropped because the classifiers disagreed (or one could not be decoded)."""
        return self.total - len(self.kept)


def label_by_consensus(dataset: Dataset, classifiers: list[nn.Module], *, batch_size: int = 32) -> Consensus:
    """Keep the images of ``dataset`` on which all ``classifiers`` agree, labelled with their common top-1 class.

    Each classifier takes ``(N, C, H, W)`` in [0, 1] (see :func:`label_with_classifier`). Used by the
    ``imagenet-objects`` tier with EfficientNet-Lite0, -Lite1 and -Lite2: where three ImageNet classifiers agree on
    a clean photo, their class is a well-conditioned stand-in for a human label.

    Raises:
        ValueError: no classifier.
    """
    if not classifiers:
        raise ValueError("label_by_consensus needs at least one classifier")
    votes = torch.stack(
        [label_with_classifier(dataset, net, batch_size=batch_size).predicted for net in classifiers]
    )  # (K, N), UNLABELLED for undecodable items
    agreed = (votes == votes[:1]).all(0) & (votes[0] != UNLABELLED)
    kept = agreed.nonzero().flatten()
    return Consensus(dataset, kept, votes[0, kept])
