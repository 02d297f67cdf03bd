"""``TrainConfig``: every knob of the triplet training loop, with the paper's defaults."""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field

__all__ = ["TrainConfig", "add_config_arguments", "config_from_args"]


@dataclass
class TrainConfig:
    """Configuration of :func:`recondefense.train.train`.

    Defaults follow the paper (section 3.2, Algorithm 1, Table 1) and its official code: Adam lr 1e-3
    without decay, batch 125, Eq. 1 with alpha=1, beta=0.01, C=100, Eq. 1 + Eq. 2 summed, PGD
    eps=0.01, step 0.004, 10 steps, no random start. Options beyond the paper are off by default.
    """

    # data and classifier
    data: str = "fashionmnist"  # "fashionmnist", "photos[:N]" (crops labelled by the classifier) or an ImageFolder
    image_size: int | None = None  # resize + center-crop ImageFolder images (photos: crop size, default 224)
    classifier: str = "fashionmnist-smallcnn"  # registered name, "torchvision:<arch>" or "package.module:factory"
    classifier_weights: str | None = None  # safetensors state dict for the torchvision/factory forms
    mean: tuple[float, ...] | None = None  # normalization the classifier expects (None: it takes [0, 1])
    std: tuple[float, ...] | None = None
    # attack that makes the triplets (x, x~, y), against the frozen classifier (Table 1)
    attack: str = "pgd"  # "fgsm", "pgd" or "mix" (a fair coin per batch)
    eps: float = 0.01
    step_size: float = 0.004
    steps: int = 10
    random_start: bool = False
    triplets: str = "online"  # "online": attacked each batch; "cached": attacked once, stored as 8-bit in <out>/
    clean_fraction: float = 0.0  # beyond the paper: share of inputs left unattacked
    adaptive: bool = False  # beyond the paper: attack through the current AE + classifier
    # autoencoder (paper section 3.1)
    width: int = 16
    depth: int = 3
    skip: bool = True
    init_from: str | None = None  # start from these defense weights (name, hub id or folder) instead of random init
    # optimisation (paper: Adam 1e-3, no decay; warm-up 50 + 150 epochs on ImageNet)
    epochs: int = 20
    warmup_epochs: int = 5  # visual loss only
    batch_size: int = 125
    lr: float = 1e-3
    lr_schedule: str = "constant"  # or "cosine"
    alpha: float = 1.0
    beta: float = 0.01
    c: float = 100.0
    visual_weight: float = 1.0  # weight of Eq. 1 after warm-up (official code: 0.005)
    ce_weight: float = 1.0
    # validation, logging, checkpoints
    val_limit: int | None = 2000
    log_every: int = 50
    checkpoint_every: int = 500
    out: str = "runs/exp"
    resume: bool = False
    overwrite: bool = False
    seed: int = 0
    device: str = "auto"  # "auto": cuda when available
    amp: bool = True  # bfloat16 autocast on CUDA (ignored on CPU)
    channels_last: bool = True  # on CUDA
    num_workers: int = 0
    progress: bool = True
    stop_after_steps: int | None = None  # save a checkpoint and stop after this many steps (tests, time budgets)
    extra_meta: dict = field(default_factory=dict)  # copied into the model card's config.json meta


def _parse_floats(text: str) -> tuple[float, ...]:
    return tuple(float(v) for v in text.split(","))


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """One ``--flag`` per :class:`TrainConfig` field (``--no-flag`` for booleans), defaults from the dataclass."""
    for f in dataclasses.fields(TrainConfig):
        if f.name == "extra_meta":
            continue
        flag = "--" + f.name.replace("_", "-")
        default = f.default
        kind = str(f.type)
        if kind == "bool":
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default)
        elif "tuple" in kind:
            parser.add_argument(flag, type=_parse_floats, default=default, help="comma-separated floats")
        elif kind.startswith("int"):
            parser.add_argument(flag, type=int, default=default)
        elif kind.startswith("float"):
            parser.add_argument(flag, type=float, default=default)
        else:
            parser.add_argument(flag, type=str, default=default)


#: Fields that change how a run is executed or logged, not what it trains.
_OPERATIONAL = {"out", "resume", "overwrite", "progress", "log_every", "checkpoint_every", "num_workers", "device"}


def config_to_command(config: TrainConfig) -> str:
    """The ``recondefense train`` command line that trains ``config``: data, classifier and attack,
    every other field that differs from its default, then ``--out`` (``--resume`` etc. left out)."""
    parts = ["recondefense train"]
    for f in dataclasses.fields(TrainConfig):
        value = getattr(config, f.name)
        shown = f.name in ("data", "classifier", "attack") or value != f.default
        if f.name == "extra_meta" or f.name in _OPERATIONAL or not shown:
            continue
        flag = "--" + f.name.replace("_", "-")
        if isinstance(value, bool):
            parts.append(flag if value else "--no-" + f.name.replace("_", "-"))
        elif isinstance(value, tuple):
            parts.append(f"{flag} {','.join(str(v) for v in value)}")
        else:
            parts.append(f"{flag} {value}")
    parts.append(f"--out {config.out}")
    return " ".join(parts)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """Build a :class:`TrainConfig` from parsed ``add_config_arguments`` flags."""
    names = {f.name for f in dataclasses.fields(TrainConfig)} - {"extra_meta"}
    return TrainConfig(**{n: getattr(args, n) for n in names})
