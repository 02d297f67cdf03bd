"""``TrainConfig``: every knob of the triplet training loop, with the paper's defaults."""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..losses import EQ1_ALPHA, EQ1_BETA, EQ1_C, VISUAL_LOSSES
from ..purifier_config import ARCHITECTURE_KEYS, GATED_INNER, PurifierConfig
from .architecture import check_freeze, parse_widths, purifier_config
from .attack_specs import attack_parts, corruption_spec, gaussian_sigma
from .negatives import NATURAL_VARIANTS, lookalike_kinds

#: The network defaults: those of the one purifier config (the paper's AE).
_NET = PurifierConfig()

__all__ = ["TrainConfig", "add_config_arguments", "config_from_args", "validate_config", "changed_fields", "CHOICES"]


def _opt(default, help: str = ""):  # noqa: A002 (argparse's name)
    """A field with its default and its ``--help`` text (kept in the field's metadata)."""
    return field(default=default, metadata={"help": help})


@dataclass
class TrainConfig:
    """Configuration of :func:`recondefense.train.train`.

    Defaults follow the paper (section 3.2, Algorithm 1, Table 1) and its official code: Adam lr 1e-3
    without decay, batch 125, Eq. 1 with alpha=1, beta=0.01, C=100, Eq. 1 + Eq. 2 summed, PGD
    eps=0.01, step 0.004, 10 steps, no random start. Options beyond the paper are off by default.
    """

    # data and classifier
    data: str = _opt(
        "fashionmnist",
        '"fashionmnist", "photos[:N]" (crops of the training photos labelled by the classifier), "objects[:N]" '
        '(object photographs: Tux Paint cut-outs composited onto photos, GCompris photos), "folder:PATH" '
        "(unlabelled images, any nesting, labelled by the classifier, split by a seeded path hash) or an "
        'ImageFolder "PATH" / "imagefolder:PATH" (class sub-folders; PATH/train and PATH/val when they exist)',
    )
    image_size: int | None = _opt(
        None,
        "square size that folder, ImageFolder and photos images are resized and center-cropped to (default: 224; "
        "Fashion-MNIST images are always 28)",
    )
    classifier: str = _opt(
        "fashionmnist-smallcnn",
        'registered name, "torchvision:<arch>:<WEIGHTS>" or "timm:<name>" (pretrained, normalization from their '
        'metadata), "torchvision:<arch>" or "package.module:factory" (with --classifier-weights, --mean, --std); '
        "several, comma-separated, are discriminators in turn (training image i is attacked and judged by "
        "classifier i mod K; the first one labels unlabelled data and is the one validated)",
    )
    classifier_weights: str | None = _opt(None, "safetensors state dict for the torchvision/factory forms")
    mean: tuple[float, ...] | None = _opt(None, "normalization the classifier expects (None: it takes [0, 1])")
    std: tuple[float, ...] | None = _opt(None, "per-channel std, with --mean")
    # attack that makes the triplets (x, x~, y), against the frozen classifier (Table 1)
    attack: str = _opt(
        "pgd",
        '"fgsm", "pgd", "mix" (a fair coin per batch), "gaussian:<sigma>" (noise triplets for randomized smoothing) '
        'or "corruption[:names][@severities]" (ImageNet-C); several joined by + are drawn per batch (pgd+corruption)',
    )
    eps: float = _opt(0.01, "L-inf budget of the training attack, in (0, 1] (pixels in [0, 1])")
    step_size: float = _opt(0.004, "PGD step size, in (0, 1]")
    steps: int = _opt(10, "PGD steps")
    random_start: bool = _opt(False, "PGD starts from a random point in the eps-ball")
    triplets: str = _opt("online", '"online": attacked each batch; "cached": attacked once, stored as 8-bit in <out>/')
    clean_fraction: float = _opt(0.0, "beyond the paper: share of inputs left unattacked")
    adaptive: bool = _opt(False, "beyond the paper: attack through the current AE + classifier")
    # autoencoder (paper section 3.1)
    width: int = _opt(_NET.width, "channels of the first encoder block (halved per block; residual: doubled per level)")
    depth: int = _opt(_NET.depth, "stride-2 encoder blocks (the decoder mirrors them)")
    skip: bool = _opt(_NET.skip, "skip from the first encoder block to the last decoder block")
    widths: str | None = _opt(
        None,
        'filters per encoder block of the paper AE ("recon", and the AE inside "detail"/"gated"), comma-separated, '
        'overriding --width and --depth (e.g. "16,16,16": more capacity at low resolution, where it is cheap)',
    )
    arch: str = _opt(
        _NET.arch,
        '"recon" (the paper\'s AE), "residual" (x + zero-initialised U-Net correction: identity at init) or '
        '"detail" (the AE plus a zero-initialised detail U-Net), "gated" (the AE through a learned per-image gate '
        'that starts nearly closed) or "routed" (a gate routing each image to nothing, the AE or a residual '
        'corruption purifier); --init-from may name trained "recon" weights for "detail", weights of the --inner '
        'kind for "gated" and "routed", and gated weights for "routed" (their gate and AE)',
    )
    freeze: str | None = _opt(
        None,
        'comma-separated parameter-name prefixes kept frozen (e.g. "bottleneck": train only the gate of "gated"; '
        '"bottleneck,corruption": only that of "routed"); each must name parameters of the --arch network',
    )
    detail_width: int = _opt(
        _NET.detail_width, '"detail"/"gated": channels of the detail U-Net\'s (gate\'s) first level'
    )
    detail_depth: int = _opt(_NET.detail_depth, '"detail"/"gated": stride-2 levels of the detail U-Net (gate)')
    inner: str = _opt(
        _NET.inner,
        '"gated": the purifier behind the gate ("routed": its adversarial purifier), "recon" (the paper\'s AE) or '
        '"residual" (--width, --depth)',
    )
    corruption_width: int = _opt(_NET.corruption_width, '"routed": channels of the corruption purifier\'s first level')
    corruption_depth: int = _opt(_NET.corruption_depth, '"routed": stride-2 levels of the corruption purifier')
    bypass_below: float = _opt(
        _NET.bypass_below,
        '"gated"/"routed" at inference: images whose gate (route probability) is below this skip the purifier',
    )
    pass_smoothing: float = _opt(
        _NET.pass_smoothing,
        '"gated"/"routed": share of a 3 x 3 blur in what the pass route (gate shut) gives; 0 passes images untouched',
    )
    contrast_floor: float = _opt(
        _NET.contrast_floor,
        '"gated"/"routed": images of a contrast (RMS deviation from the channel means) below this are stretched '
        "to --contrast-target first; 0: never",
    )
    contrast_target: float = _opt(_NET.contrast_target, '"gated"/"routed": the contrast washed-out images get')
    strong_widths: str | None = _opt(
        None, '"routed": filters per block of a wider AE that stands in for the adversarial purifier on flagged images'
    )
    strong_above: float = _opt(_NET.strong_above, '"routed": the route-1 probability from which --strong-widths serves')
    init_from: str | None = _opt(
        None,
        "start from these defense weights (name, hub id or folder), or from the network of a run's "
        "checkpoint.safetensors, instead of random init; the settings no option sets (dot removal, unsharp mask, "
        "black point, brightness veto, corruption strength) come with them into the trained weights; on the command "
        "line the network flags left at their defaults (--arch, --width, --widths, --bypass-below, "
        "--contrast-floor, ...) take the start's values",
    )
    # optimisation (paper: Adam 1e-3, no decay; warm-up 50 + 150 epochs on ImageNet)
    epochs: int = _opt(20, "total epochs, warm-up included")
    warmup_epochs: int = _opt(5, "visual loss only")
    batch_size: int = _opt(125, "per process")
    lr: float = _opt(1e-3, "Adam learning rate")
    lr_schedule: str = _opt(
        "constant",
        '"constant" (the paper: no decay) or "cosine" (cosine annealing from --lr to 0 over all --epochs, warm-up '
        "included)",
    )
    visual_loss: str = _opt(
        "eq1",
        '"eq1" (the paper\'s RMSE + PSNR term, per image) or "mse" (mean squared error: for a residual purifier that '
        "must leave some inputs alone, e.g. with --clean-fraction, where Eq. 1 pins it to the identity)",
    )
    alpha: float = _opt(EQ1_ALPHA, "Eq. 1 weight of the RMSE term")
    beta: float = _opt(EQ1_BETA, "Eq. 1 weight of the PSNR term")
    c: float = _opt(EQ1_C, "Eq. 1 PSNR offset C")
    visual_weight: float = _opt(1.0, "weight of Eq. 1 after warm-up (official code: 0.005)")
    ce_weight: float = _opt(1.0, "weight of the guidance term (Eq. 2 with --guidance ce)")
    guidance: str = _opt(
        "ce",
        '"ce" (paper, Eq. 2: cross-entropy to the label), "kl" or "logits-l1" (match the classifier\'s logits on '
        "the clean image, HGD)",
    )
    gate_weight: float = _opt(
        0.0,
        'beyond the paper, "gated" and "routed" only: weight of the gate\'s detection loss (binary cross-entropy: '
        'open on attacked images, closed on clean ones; "routed": cross-entropy of the routes, clean images to route '
        "0, attacked ones to 1, corrupted or noisy ones to 2, by the source of their batch; needs no classifier, so "
        "--ce-weight 0 --clean-weight 0 trains fast)",
    )
    gate_negatives: float = _opt(
        0.0,
        "beyond the paper, with --gate-weight: share of each batch's clean images also shown to the gate, as clean, "
        "with natural high-frequency content (JPEG artifacts, sensor noise, sharpening) so it stays shut on them",
    )
    gate_negative_kinds: str = _opt(
        ",".join(NATURAL_VARIANTS),
        "with --gate-negatives: the kinds of look-alike, comma-separated, some of jpeg, noise, sharpen and brightness "
        "(ImageNet-C's brightness, which no route undoes: the gate should stay shut on it)",
    )
    clean_weight: float = _opt(0.0, "beyond the paper: weight of the clean-consistency term (guidance on purify(x))")
    # validation, logging, checkpoints
    val_limit: int | None = _opt(2000, "validation images per evaluation")
    log_every: int = _opt(50, "steps between metrics.jsonl records")
    checkpoint_every: int = _opt(500, "steps between checkpoints (also at each epoch end)")
    out: str = _opt("runs/exp", "run folder: checkpoint, metrics.jsonl, final/ weights")
    resume: bool = _opt(False, "continue from the checkpoint in --out")
    overwrite: bool = _opt(False, "replace an existing --out")
    seed: int = _opt(0, "seed of init, shuffling and attacks")
    device: str = _opt("auto", '"auto" (cuda when available), "cpu", "cuda" or "cuda:N"')
    amp: bool = _opt(True, "bfloat16 autocast on CUDA (ignored on CPU)")
    cpu_amp: bool = _opt(False, "bfloat16 autocast on the CPU too: about 1.6x faster ImageNet steps with AMX")
    channels_last: bool = _opt(True, "channels-last layout: on CUDA, and on the CPU for colour images")
    num_workers: int = _opt(0, "DataLoader workers")
    progress: bool = _opt(True, "tqdm progress bars")
    max_minutes: float | None = _opt(
        None,
        "time budget: end training (final validation, weights saved) at the first epoch end where one more "
        "epoch would run past this many minutes; the card records the epochs trained",
    )
    stop_after_steps: int | None = _opt(None, "save a checkpoint and stop after this many steps (tests, time budgets)")
    extra_meta: dict = field(default_factory=dict)  # copied into the model card's config.json meta
    # the start weights' settings that no option sets (architecture.START_SETTINGS) and those of the options left at
    # their defaults that change no shape (ADOPTED_SETTINGS), filled by the run from --init-from / fit(defense=...)
    # and kept in the checkpoint and the trained weights' config.json
    start_settings: dict = field(default_factory=dict)


#: The fields that are no ``--flag``: set from Python or by the run itself.
_NOT_FLAGS = ("extra_meta", "start_settings")


def _parse_floats(text: str) -> tuple[float, ...]:
    return tuple(float(v) for v in text.split(","))


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """One ``--flag`` per :class:`TrainConfig` field (``--no-flag`` for booleans), defaults from the dataclass."""
    for f in dataclasses.fields(TrainConfig):
        if f.name in _NOT_FLAGS:
            continue
        flag = "--" + f.name.replace("_", "-")
        default = f.default
        kind = str(f.type)
        text = f.metadata.get("help", "").replace("%", "%%")  # argparse formats help with %
        # BooleanOptionalAction adds its own default; a help text that explains its default keeps only that
        shown_default = "" if kind == "bool" or "default" in text else " (default: %(default)s)"
        options = {"default": default, "help": (text + shown_default).strip()}
        if kind == "bool":
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, **options)
        elif "tuple" in kind:
            options["help"] = "comma-separated floats: " + options["help"]
            parser.add_argument(flag, type=_parse_floats, **options)
        elif kind.startswith("int"):
            parser.add_argument(flag, type=int, **options)
        elif kind.startswith("float"):
            parser.add_argument(flag, type=float, **options)
        else:
            parser.add_argument(flag, type=str, **options)


#: Fields that change how a run is executed or logged, not what it trains.
_OPERATIONAL = {"out", "resume", "overwrite", "progress", "log_every", "checkpoint_every", "num_workers", "device"}


def config_to_command(config: TrainConfig) -> str:
    """The ``recondefense train`` command line that trains ``config``: data, classifier and attack,
    every other field that differs from its default, then ``--out`` (``--resume`` etc. left out)."""
    parts = ["recondefense train"]
    for f in dataclasses.fields(TrainConfig):
        value = getattr(config, f.name)
        shown = f.name in ("data", "classifier", "attack") or value != f.default
        if f.name in _NOT_FLAGS or f.name in _OPERATIONAL or not shown:
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
    names = {f.name for f in dataclasses.fields(TrainConfig)} - set(_NOT_FLAGS)
    return TrainConfig(**{n: getattr(args, n) for n in names})


#: Allowed values of the choice fields (``--attack`` also takes ``mix``).
CHOICES = {
    "attack": ("fgsm", "pgd", "mix"),
    "triplets": ("online", "cached"),
    "lr_schedule": ("constant", "cosine"),
    "guidance": ("ce", "kl", "logits-l1"),
    "visual_loss": VISUAL_LOSSES,
    "arch": tuple(ARCHITECTURE_KEYS),
    "inner": GATED_INNER,
}


#: The range of each numeric field: ``(test of its value, what is expected)``; None passes the optional ones.
_RANGES: dict[str, tuple[Callable[[Any], bool], str]] = {
    **dict.fromkeys(
        ("epochs", "batch_size", "width", "depth", "steps", "log_every", "checkpoint_every"),
        (lambda v: v >= 1, "a positive integer"),
    ),
    **dict.fromkeys(("eps", "step_size"), (lambda v: 0 < v <= 1, "a number in (0, 1] (pixels are in [0, 1])")),
    **dict.fromkeys(
        ("lr", "visual_weight", "ce_weight", "clean_weight", "gate_weight", "alpha", "beta"),
        (lambda v: v >= 0, "a number >= 0"),
    ),
    **dict.fromkeys(
        ("gate_negatives", "clean_fraction", "pass_smoothing", "contrast_floor"),
        (lambda v: 0 <= v <= 1, "a fraction in [0, 1]"),
    ),
    **dict.fromkeys(("contrast_target", "strong_above"), (lambda v: 0 < v <= 1, "a number in (0, 1]")),
    "max_minutes": (lambda v: v is None or v > 0, "a positive number of minutes"),
    "val_limit": (lambda v: v is None or v >= 1, "a positive number of images"),
    "image_size": (lambda v: v is None or v >= 1, "a positive number of pixels"),
}


def validate_config(config: TrainConfig) -> None:
    """Refuse a config that cannot train, before anything is read, written or deleted.

    Raises:
        ValueError: an unknown choice, a non-positive count or size, an attack budget outside (0, 1], a
            fraction outside [0, 1], a ``--data`` spec that cannot be read, ``--freeze`` prefixes that name no
            parameter, or a device this machine lacks (one line saying which flag and what is allowed).
    """
    parts = attack_parts(config.attack)
    if not all(parts):
        raise ValueError(
            f"--attack {config.attack!r}: expected one of {list(CHOICES['attack'])}, gaussian:<sigma> "
            "or corruption[:names][@severities], several joined by +"
        )
    for part in parts:
        if part.startswith("gaussian:"):
            sigma = gaussian_sigma(part)
            if sigma is None or sigma <= 0:
                raise ValueError(f"--attack {part!r}: expected gaussian:<sigma> with a positive sigma")
        elif corruption_spec(part) is None and part not in CHOICES["attack"]:
            raise ValueError(
                f"--attack {part!r}: expected one of {list(CHOICES['attack'])}, gaussian:<sigma> or "
                "corruption[:names][@severities]"
            )
    for name, allowed in CHOICES.items():
        if name == "attack":
            continue
        if getattr(config, name) not in allowed:
            raise ValueError(f"--{name.replace('_', '-')} {getattr(config, name)!r}: expected one of {list(allowed)}")
    for name, (within, expected) in _RANGES.items():
        value = getattr(config, name)
        if not within(value):
            raise ValueError(f"--{name.replace('_', '-')} {value}: expected {expected}")
    if not 0 <= config.warmup_epochs <= config.epochs:
        raise ValueError(f"--warmup-epochs {config.warmup_epochs}: expected 0 to --epochs ({config.epochs})")
    if config.gate_negatives > 0 and config.gate_weight == 0:
        raise ValueError("--gate-negatives trains the gate: it needs --gate-weight > 0")
    try:
        lookalike_kinds(config.gate_negative_kinds)
    except ValueError as error:
        raise ValueError(f"--gate-negative-kinds: {error}") from None
    if config.gate_weight > 0 and config.arch not in ("gated", "routed"):
        raise ValueError(f"--gate-weight {config.gate_weight}: only a --arch gated or routed purifier has a gate")
    if config.adaptive and config.triplets == "cached":
        raise ValueError("--adaptive triplets depend on the current AE and cannot be cached: use --triplets online")
    if config.widths is not None and len(parse_widths(config.widths)) < 2 and config.skip:
        raise ValueError(f"--widths {config.widths}: the skip connection needs two blocks or more (or --no-skip)")
    bad = purifier_config(config).problem()  # the ranges config.json is held to: a network that loads back
    if bad is not None:
        raise ValueError(f"--{bad[0].replace('_', '-')} {getattr(config, bad[0])}: expected {bad[1]}")
    _check_data(config.data)
    _check_classifiers(config)
    from ..arguments import check_device

    check_device(config.device)
    if config.freeze:
        check_freeze(config)


def _check_classifiers(config: TrainConfig) -> None:
    """Refuse a ``--classifier`` that would be a randomly initialized network (``torchvision:<arch>`` without
    ``--classifier-weights``): a defense trained against it defends nothing."""
    from ..classifiers import random_weights

    for spec in (part.strip() for part in config.classifier.split(",")):
        if random_weights(spec) and config.classifier_weights is None:
            raise ValueError(
                f"--classifier {spec} names an architecture without weights: training against a randomly "
                f"initialized network defends nothing; pass --classifier-weights FILE (with --mean and --std) or "
                f"name pretrained weights ({spec}:DEFAULT)"
            )


def _check_data(spec: str) -> None:
    """Refuse a ``--data`` spec that cannot name a data set (the folders themselves are looked at later)."""
    if spec in ("photos", "objects") or spec.startswith(("photos:", "objects:")):
        from ..data import photo_count

        photo_count(spec)
    elif spec.strip() in ("", "folder:", "imagefolder:"):
        raise ValueError(
            f"--data {spec!r}: expected fashionmnist, photos[:N], objects[:N], folder:PATH, imagefolder:PATH or an "
            "ImageFolder PATH"
        )


def changed_fields(saved: dict, config: TrainConfig) -> dict[str, tuple]:
    """Fields that decide what a run trains and differ between a checkpoint's saved config and ``config``:
    ``{name: (saved value, new value)}`` (operational fields such as ``out`` or ``progress`` are ignored)."""
    changed = {}
    for f in dataclasses.fields(TrainConfig):
        skipped = f.name in _OPERATIONAL or f.name in ("extra_meta", "stop_after_steps")
        if skipped or (f.name not in saved and f.default is dataclasses.MISSING):
            continue
        old, new = saved.get(f.name, f.default), getattr(config, f.name)  # a field added since: it ran at the default
        if isinstance(new, tuple) and isinstance(old, list):
            old = tuple(old)
        if f.name == "start_settings":  # settings added since the checkpoint was written: it ran at their defaults
            old = {k: v for k, v in PurifierConfig().as_dict().items() if k in new.keys() - old.keys()} | old
        if old != new:
            changed[f.name] = (old, new)
    return changed
