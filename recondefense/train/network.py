"""The purifier being trained: building it (optionally from trained weights), which of its parameters train,
the joint phase's guidance and gate losses, and its ``final/`` folder with a model card."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from .. import __version__
from ..data import data_sources
from ..defense import ReconstructiveDefense
from ..losses import VisualLossParts, guidance_loss, visual_loss
from ..purifiers import build_purifier, pad_to_stride
from .architecture import frozen_prefixes, purifier_config, settings_text
from .attack_specs import attack_parts, corruption_spec, gaussian_sigma
from .config import TrainConfig, config_to_command
from .negatives import NATURAL_VARIANTS, natural_variants
from .triplets import labels_for

#: How many items are read, at most, to find one that decodes (unreadable files come back as None).
_PROBE_ITEMS = 64


def first_item(dataset: Dataset, where: str) -> Any:
    """The first item of ``dataset`` that decodes, among its first :data:`_PROBE_ITEMS`.

    Raises:
        ValueError: none of them decodes (``where`` names the data in the message).
    """
    item = next(
        (item for item in (dataset[i] for i in range(min(len(dataset), _PROBE_ITEMS))) if item is not None), None
    )
    if item is None:
        raise ValueError(f"{where}: none of the first {_PROBE_ITEMS} images can be decoded")
    return item


def probe(
    train_set: Dataset, names: list[str], classifiers: list[nn.Module], data_name: str, device: torch.device
) -> tuple[int, int]:
    """The channel count of the training images (the network's input) and the class count of the first
    classifier, once every classifier is checked to take the images and to output the data's classes."""
    if len(train_set) == 0:
        raise ValueError(f"the training data {data_name!r} is empty")
    image = first_item(train_set, f"the training data {data_name!r}")[0]
    classes = _num_classes(train_set)
    counts = []
    for spec, model_k in zip(names, classifiers):
        outputs = classify_probe(spec, model_k, image, device).shape[-1]
        if classes is not None and classes != outputs:
            raise ValueError(
                f"the classifier {spec!r} outputs {outputs} classes but the data {data_name!r} has {classes}: "
                "pass the classifier trained on these labels"
            )
        counts.append(outputs)
    return image.shape[0], counts[0]


def classify_probe(spec: str, classifier: nn.Module, image: torch.Tensor, device: torch.device) -> torch.Tensor:
    """The classifier's logits on one training image ``(C, H, W)``; a classifier that cannot take it is a
    ValueError naming the channel counts (the first convolution run) or the image's shape."""
    first: list[nn.Conv2d] = []
    hooks = [
        m.register_forward_pre_hook(lambda module, _: first.append(module) if not first else None)
        for m in classifier.modules()
        if isinstance(m, nn.Conv2d)
    ]
    try:
        with torch.no_grad():
            return classifier(image.unsqueeze(0).to(device))
    except RuntimeError as err:
        if first and first[0].in_channels != image.shape[0]:
            raise ValueError(
                f"the classifier {spec!r} takes {first[0].in_channels}-channel images but the training images "
                f"have {image.shape[0]} channel(s) (shape {tuple(image.shape)}): give it images of its channel "
                "count (PIL: image.convert('L') for 1 channel, 'RGB' for 3)"
            ) from err
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(
            f"the classifier {spec!r} fails on a training image of shape {tuple(image.shape)}: {reason}"
        ) from err
    finally:
        for hook in hooks:
            hook.remove()


def _num_classes(dataset: Dataset) -> int | None:
    base = getattr(dataset, "dataset", dataset)
    classes = getattr(base, "classes", None)
    if classes is not None:
        return len(classes)
    labels = getattr(base, "labels", None)
    return int(labels.max()) + 1 if labels is not None else None


class AnySize(nn.Module):
    """A purifier on any height and width, as :meth:`ReconstructiveDefense.purify` runs it: padded to its
    ``stride`` (:func:`~recondefense.purifiers.pad_to_stride`), cropped back. Batches of multiples of the stride
    go through unchanged. Holds no parameters of its own: ``net``'s state dict is the one saved."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        stride = self.net.stride
        if height % stride == 0 and width % stride == 0:
            return self.net(x)
        return self.net(pad_to_stride(x, stride))[..., :height, :width]


def build_network(config: TrainConfig, in_channels: int, start: ReconstructiveDefense | None) -> nn.Module:
    """The purifier ``config.arch``, randomly initialised or started from ``start`` (``config.init_from``).

    A ``"detail"`` network may start from trained ``"recon"`` weights: they fill its bottleneck AE and the
    zero-initialised detail path makes it compute exactly that AE at step 0. A ``"gated"`` one may start from
    trained weights of its ``config.inner`` kind: they fill the purifier behind the gate. A ``"routed"`` one may start
    from those too (its adversarial purifier), or from gated weights: their gate fills its gate's trunk and both
    routes, which share what it opened (:meth:`~recondefense.routing.RouteMixture.load_gate` with ``share_opening``), their purifier its
    adversarial purifier.

    Raises:
        ValueError: ``start`` takes another channel count than the images, or holds another network.
    """
    net = build_purifier(purifier_config(config, in_channels))
    if start is None:
        return net
    source = _start_name(config)
    if start.channels != in_channels:
        raise ValueError(
            f"{source} purifies {start.channels}-channel images but the training images have {in_channels} "
            f"channel(s): start from weights trained on {in_channels}-channel images, or from none"
        )
    wrapped = {"detail": "recon", "gated": config.inner, "routed": config.inner}.get(config.arch)  # held inside
    target = net.bottleneck if wrapped is not None and start.arch == wrapped else net
    state = start.autoencoder.state_dict()
    try:
        if config.arch == "routed" and start.arch == "gated":
            gate = {k.removeprefix("gate."): v for k, v in state.items() if k.startswith("gate.")}
            net.load_gate(gate, share_opening=True)
            inner = {k.removeprefix("bottleneck."): v for k, v in state.items() if k.startswith("bottleneck.")}
            target, state = net.bottleneck, inner
        target.load_state_dict(state)
    except (RuntimeError, ValueError) as err:
        cli = not config.data.startswith("python:")
        theirs = settings_text(start.arch, start.hyperparameters, cli)
        ours = settings_text(config.arch, purifier_config(config).as_dict(), cli)
        hint = (
            "; train with the weights' settings (--arch detail takes 'recon' weights, --arch gated those of its "
            "--inner kind, --arch routed those and gated ones)"
            if cli
            else ""
        )
        raise ValueError(
            f"{source} holds a network that does not match the one this run builds: {theirs} (the weights) vs "
            f"{ours} (this run){hint}"
        ) from err
    return net


def _start_name(config: TrainConfig) -> str:
    """The start weights as the caller named them: ``--init-from`` on the command line, ``defense=`` for fit."""
    if config.data.startswith("python:"):  # recondefense.train.fit
        return "fit(defense=...)" if config.init_from is None else f"fit(defense={config.init_from!r})"
    return f"--init-from {config.init_from!r}"


def train_loss(
    config: TrainConfig,
    ae: nn.Module,
    model: nn.Module,
    classifiers: list[nn.Module],
    groups: list[tuple[int, torch.Tensor]],
    x: torch.Tensor,
    y: torch.Tensor,
    x_adv: torch.Tensor,
    routes: torch.Tensor,
    warmup: bool,
    relabel: bool,
) -> tuple[torch.Tensor, VisualLossParts, torch.Tensor, float | None, float | None]:
    """One step's forward pass: AE(x~) (by ``model``: ``ae`` or its DDP wrapper), its visual loss terms,
    the loss to minimise, and the guidance and train accuracy of the joint phase (None in warm-up or without
    a classifier in the loss). ``routes``: the route each x~ teaches a gate, ``(N,)`` int64 (0: left clean by
    ``--clean-fraction``, else :func:`~.triplets.source_route` of its source, -1 unknown)."""
    recon = model(x_adv).float()
    parts = visual_loss(recon, x, alpha=config.alpha, beta=config.beta, c=config.c, kind=config.visual_loss)
    if warmup:
        loss, guidance, train_acc = parts.total, None, None
    elif config.ce_weight > 0 or config.clean_weight > 0:
        recon_clean = model(x).float() if config.clean_weight > 0 else None
        guide, clean_guide, correct = _guidance(config, classifiers, groups, x, y, recon, recon_clean, relabel)
        loss = config.visual_weight * parts.total + config.ce_weight * guide
        if recon_clean is not None:
            loss = loss + config.clean_weight * clean_guide
        guidance, train_acc = guide.item(), correct / len(y)
    else:  # no classifier in the loop (e.g. only the gate's detection loss)
        loss, guidance, train_acc = config.visual_weight * parts.total, None, None
    if config.gate_weight > 0:
        loss = loss + config.gate_weight * _gate_loss(
            ae, x, x_adv, routes, config.gate_negatives, config.gate_negative_kinds
        )
    return recon, parts, loss, guidance, train_acc


def _guidance(
    config: TrainConfig,
    classifiers: list[nn.Module],
    groups: list[tuple[int, torch.Tensor]],
    x: torch.Tensor,
    y: torch.Tensor,
    recon: torch.Tensor,
    recon_clean: torch.Tensor | None,
    relabel: bool,
) -> tuple[torch.Tensor, torch.Tensor | None, int]:
    """The joint phase's guidance terms, each image judged by its classifier: on the purified attacked batch,
    on the purified clean batch (None without the clean-consistency term), and the count of purified attacked
    images the classifiers label as they label the clean ones."""
    guide = recon.new_zeros(())
    clean_guide = None if recon_clean is None else recon.new_zeros(())
    correct = 0
    for k, rows in groups:
        clean_logits, labels = labels_for(classifiers[k], x[rows], y[rows], relabel)
        share = len(rows) / len(y)
        logits = classifiers[k](recon[rows])
        guide = guide + share * guidance_loss(logits, clean_logits, labels, config.guidance)
        correct += int((logits.argmax(1) == labels).sum())
        if recon_clean is not None:
            logits_clean = classifiers[k](recon_clean[rows])
            clean_guide = clean_guide + share * guidance_loss(logits_clean, clean_logits, labels, config.guidance)
    return guide, clean_guide, correct


def _gate_loss(
    ae: nn.Module,
    x: torch.Tensor,
    x_adv: torch.Tensor,
    routes: torch.Tensor,
    negatives: float = 0.0,
    kinds: str | Sequence[str] = NATURAL_VARIANTS,
) -> torch.Tensor:
    """Detection loss of a gated purifier's gate: binary cross-entropy, open (1) on attacked or corrupted
    images, closed (0) on clean ones (inputs left clean by ``--clean-fraction``, route 0, count as clean) and on
    natural variants (:func:`~.negatives.natural_variants`, of ``kinds``) of the first ``negatives`` share of the
    clean ones.
    A routed purifier's route loss: cross-entropy of its route logits, clean images and their variants to route 0,
    x~ to its ``routes`` (1 attacked, 2 corrupted).

    Raises:
        ValueError: a network without a gate, or a routed one and x~ of unknown source (route -1).
    """
    gate = getattr(ae, "gate_logit", None)
    if gate is None:
        raise ValueError("--gate-weight needs --arch gated or routed (a purifier with a gate)")
    clean = x
    count = round(negatives * len(x))
    if count:
        clean = torch.cat([x, natural_variants(x[:count], kinds=kinds)])  # draws from the step's seeded global RNG
    if hasattr(ae, "route_logits"):
        if (routes < 0).any():
            raise ValueError(
                "the route loss needs the source of every x~, and the triplet cache of this run was written "
                "without it (several --attack sources): remove its triplets_*.npy files to make it again"
            )
        logits = torch.cat([ae.route_logits(x_adv), ae.route_logits(clean)])
        return F.cross_entropy(logits, torch.cat([routes, routes.new_zeros(len(clean))]))
    logits = torch.cat([gate(x_adv), gate(clean)])
    targets = torch.cat([(routes != 0).float(), torch.zeros(len(clean), device=x.device)])
    return F.binary_cross_entropy_with_logits(logits, targets)


def train_mode(ae: nn.Module, frozen: list[str]) -> None:
    """Training mode, except the frozen sub-networks: they stay in eval mode (batch norm statistics kept)."""
    ae.train()
    for name, module in ae.named_modules():
        if name and any(name.startswith(prefix) for prefix in frozen):
            module.eval()


def optimizer(
    config: TrainConfig, ae: nn.Module, steps_per_epoch: int
) -> tuple[list[str], torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """The ``--freeze`` prefixes (their parameters stop requiring gradients), and Adam with its ``--lr-schedule``
    over the trainable rest."""
    frozen = frozen_prefixes(config, (name for name, _ in ae.named_parameters()))
    trained = [p for name, p in ae.named_parameters() if not any(name.startswith(f) for f in frozen)]
    for name, p in ae.named_parameters():
        p.requires_grad_(not any(name.startswith(f) for f in frozen))
    opt = torch.optim.Adam(trained, lr=config.lr)
    total_steps = steps_per_epoch * config.epochs
    if config.lr_schedule == "cosine":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(total_steps, 1))
    elif config.lr_schedule == "constant":
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0)
    else:
        raise ValueError(f"unknown lr_schedule {config.lr_schedule!r}: expected constant or cosine")
    return frozen, opt, sched


def save_final(
    ae: nn.Module,
    config: TrainConfig,
    val: dict[str, float],
    final: Path,
    epochs_trained: int,
    validation_note: str | None = None,
) -> None:
    """``final/``: weights, config.json with the run's meta, and the model card rendered from that meta
    (``validation_note``: why the validation numbers mean little, shown above them)."""
    attack = f"{config.attack} (eps={config.eps}" + (
        f", step {config.step_size}, {config.steps} steps)" if config.attack != "fgsm" else ")"
    )
    if gaussian_sigma(config.attack) is not None:
        attack = f"gaussian noise, sigma {gaussian_sigma(config.attack)} (clamped to [0, 1])"
    elif any(corruption_spec(p) is not None for p in attack_parts(config.attack)):
        attack = f"{config.attack} (+: one source per batch; PGD/FGSM eps={config.eps})"
    command = (
        config.extra_meta.get("python_call", "recondefense.train.fit(...)")
        if config.data.startswith("python:")
        else config_to_command(config)
    )
    meta = {
        "dataset": config.data,
        **({"data_sources": sources} if (sources := data_sources(config.data)) else {}),
        "classifier": config.classifier,
        "attack": attack,
        "adaptive": config.adaptive,
        "clean_fraction": config.clean_fraction,
        "guidance": config.guidance,
        "clean_weight": config.clean_weight,
        "input_mean": config.mean,
        "input_std": config.std,
        "validation": val,
        **({"validation_note": validation_note} if validation_note else {}),
        "command": command,
        "epochs_trained": epochs_trained,
        "train_config": {k: v for k, v in dataclasses.asdict(config).items() if k != "extra_meta"},
        "recondefense_version": __version__,
        **config.extra_meta,
    }
    defense = as_defense(ae.state_dict(), ae.in_channels, config, meta)
    (final / "README.md").unlink(missing_ok=True)  # a resumed run writes its card anew
    defense.save_pretrained(final)


def as_defense(
    state: dict[str, torch.Tensor], in_channels: int, config: TrainConfig, meta: dict[str, Any]
) -> ReconstructiveDefense:
    """A :class:`ReconstructiveDefense` of ``config``'s architecture holding the network weights ``state``."""
    defense = ReconstructiveDefense.from_config(purifier_config(config, in_channels), meta)
    defense.autoencoder.load_state_dict({k: v.float().contiguous() for k, v in state.items()})
    return defense
