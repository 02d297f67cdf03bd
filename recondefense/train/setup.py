"""What a training run trains with (:class:`Setup`): the frozen classifiers, the training and validation data, and
the weights it starts from, named by a :class:`~recondefense.train.TrainConfig` (``recondefense train``) or given by
:func:`~recondefense.train.fit`."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import Dataset

from ..classifiers import load_classifier
from ..data import classifier_labelled, load_dataset
from ..defense import ReconstructiveDefense
from .architecture import ADOPTED_SETTINGS, start_network_options
from .checkpoints import CHECKPOINT, LEGACY_CHECKPOINT, defense_from_checkpoint
from .config import TrainConfig
from .triplets import CachedTrainingSet

logger = logging.getLogger(__name__)

__all__ = ["Setup", "setup_from_config", "load_start", "with_start_network", "classifier_specs", "label_cache"]


@dataclasses.dataclass
class Setup:
    """What a run trains with: frozen pixel-space classifiers (the first labels and is validated), the
    training and validation datasets of ``(image, label)`` items, a start network and how to describe them."""

    classifiers: list[nn.Module]
    names: list[str]
    train_set: Dataset
    val_set: Dataset
    start: ReconstructiveDefense | None
    data_name: str


def setup_from_config(config: TrainConfig, device: torch.device) -> Setup:
    """``recondefense train``: classifiers, data and start weights named by the config's spec strings."""
    names = classifier_specs(config.classifier)
    classifiers = [
        load_classifier(spec, config.classifier_weights, mean=config.mean, std=config.std).to(device) for spec in names
    ]
    # the (first) classifier labels unlabelled data ("photos") with its own clean predictions
    data = {"image_size": config.image_size, "classifier": classifiers[0], "num_workers": config.num_workers}
    if config.triplets == "cached" and CachedTrainingSet.complete(Path(config.out)):  # no labelling again
        train_set = CachedTrainingSet.from_folder(Path(config.out), classifier_labelled(config.data))
    else:
        train_set = load_dataset(config.data, "train", label_cache=label_cache(config, "train"), **data)
    val_set = load_dataset(config.data, "val", label_cache=label_cache(config, "val"), **data)
    start = None if config.init_from is None else load_start(config.init_from)
    return Setup(classifiers, names, train_set, val_set, start, config.data)


def label_cache(config: TrainConfig, split: str) -> Path:
    """Where a run keeps the first classifier's labels of ``split`` (unlabelled data, e.g. ``"objects:3072"``), so
    that a restarted run does not label again: ``<out>/labels/<split>-<key>.npy``, the key a digest of what the
    labels depend on (data spec, first classifier and its weights and normalization, image size)."""
    labeller = (
        config.data,
        classifier_specs(config.classifier)[0],
        config.classifier_weights,
        config.mean,
        config.std,
        config.image_size,
    )
    key = hashlib.sha256(repr(labeller).encode()).hexdigest()[:12]
    return Path(config.out) / "labels" / f"{split}-{key}.npy"


def classifier_specs(text: str) -> list[str]:
    """The comma-separated classifier specs of ``--classifier``; a ValueError when there is none."""
    specs = [part.strip() for part in text.split(",") if part.strip()]
    if not specs:
        raise ValueError(f"no classifier in {text!r}")
    return specs


def with_start_network(config: TrainConfig) -> TrainConfig:
    """The command line's ``--init-from``: the network flags left at their defaults take the start weights' values
    (:data:`~.architecture.NETWORK_OPTIONS`; those of :data:`~.architecture.ADOPTED_SETTINGS` through
    ``start_settings`` instead), so that ``--init-from default`` alone trains the default's network; a flag given
    another value keeps it. ``config`` itself without ``init_from``.

    Raises:
        FileNotFoundError, ValueError: ``init_from`` names no loadable weights or checkpoint.
    """
    if config.init_from is None:
        return config
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    options = start_network_options(load_start(config.init_from).hyperparameters)
    changes = {
        k: v
        for k, v in options.items()
        if k not in ADOPTED_SETTINGS and getattr(config, k) == defaults[k] and v != defaults[k]
    }
    if changes:
        flags = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in changes.items())
        logger.info("--init-from %s: %s, from the start weights", config.init_from, flags)
    return dataclasses.replace(config, **changes)


def load_start(init_from: str) -> ReconstructiveDefense:
    """``--init-from``: defense weights (name, hub id or folder), or a run's ``checkpoint.safetensors``."""
    if Path(init_from).name in (CHECKPOINT, LEGACY_CHECKPOINT):
        return defense_from_checkpoint(Path(init_from))
    return ReconstructiveDefense.from_pretrained(init_from)
