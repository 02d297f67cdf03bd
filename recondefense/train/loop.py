"""Algorithm 1: warm-up on the visual loss, then the GAN-like phase with the frozen classifier.

Machinery: DistributedDataParallel under ``torchrun`` (gloo on CPU, nccl on CUDA), bfloat16 autocast
and channels_last on CUDA, atomic checkpoints with exact resume (each step re-seeds from
``(seed, epoch, step)`` and the sampler skips consumed batches), SIGINT/SIGTERM checkpoint-and-exit,
a NaN/Inf guard, tqdm progress, ``metrics.jsonl``, per-epoch validation and a final
``save_pretrained`` folder with a model card.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import shutil
import signal
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler
from tqdm.auto import tqdm

from .. import __version__
from ..attacks import FGSM, PGD
from ..classifiers import load_classifier
from ..corruptions import corrupt
from ..data import collate_skipping, load_dataset
from ..defense import ReconstructiveDefense
from ..losses import guidance_loss, visual_loss
from ..metrics import psnr
from ..purifiers import build_purifier
from .config import (
    TrainConfig,
    attack_parts,
    changed_fields,
    config_to_command,
    corruption_spec,
    gaussian_sigma,
    validate_config,
)
from .curves import plot_curves

__all__ = ["train", "TrainingInterrupted"]

logger = logging.getLogger(__name__)
CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.jsonl"
CACHED_TRIPLETS = "triplets_x_adv.npy"


#: Settings a resumed run may change; the change is recorded in metrics.jsonl.
_RESUMABLE_CHANGES = {"epochs", "stop_after_steps", "max_minutes"}


class TrainingInterrupted(RuntimeError):
    """Raised by :func:`train` after SIGINT/SIGTERM once the checkpoint is saved."""


# ----------------------------------------------------------------------------------- setup helpers
def _distributed() -> tuple[int, int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0"))


def _device(config: TrainConfig, local_rank: int) -> torch.device:
    if config.device == "auto":
        return torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    device = torch.device(config.device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", local_rank)
    return device


def _check_out(out: Path, config: TrainConfig) -> None:
    """Check ``out`` before anything is read or deleted: resumable, free (or ``overwrite``), and writable."""
    used = out.is_dir() and any((out / n).exists() for n in (CHECKPOINT, METRICS, "final"))
    if config.resume:
        if not (out / CHECKPOINT).is_file():
            raise FileNotFoundError(f"--resume: no {CHECKPOINT} in {out} to resume from")
    elif used and not config.overwrite:
        raise FileExistsError(f"{out} holds another run; pass --resume to continue it or --overwrite to replace it")
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"--out {out} is a file, not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise PermissionError(f"--out {out} is not writable: {err.strerror or err}") from err


def _clear_previous_run(out: Path) -> None:
    """``--overwrite``: remove the previous run's files, once the new run has loaded its data and models."""
    for name in (CHECKPOINT, METRICS, CACHED_TRIPLETS):
        (out / name).unlink(missing_ok=True)
    shutil.rmtree(out / "final", ignore_errors=True)


def _load_checkpoint(path: Path, device: torch.device) -> dict[str, Any]:
    """The checkpoint at ``path``; a truncated or foreign file is a ValueError naming it."""
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as err:  # torch raises several types for truncated zips and foreign pickles
        raise ValueError(f"{path} is not a readable recondefense checkpoint ({type(err).__name__}: {err})") from err
    keys = {"model", "optimizer", "scheduler", "epoch", "step_in_epoch", "global_step", "config"}
    if not isinstance(state, dict) or not keys <= set(state):
        raise ValueError(f"{path} is not a recondefense checkpoint (missing {sorted(keys - set(state or {}))})")
    return state


def _trim_metrics(path: Path, global_step: int, epoch: int) -> None:
    """On resume, drop the metrics records written after the checkpoint (they are logged again) and torn lines."""
    if not path.is_file():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line torn by a crash
        if record.get("step", 0) > global_step or ("validation" in record and record.get("epoch", 0) > epoch):
            continue
        kept.append(line)
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(line + "\n" for line in kept))
    os.replace(tmp, path)


def _step_seed(seed: int, epoch: int, step: int) -> int:
    return (seed * 1_000_003 + epoch * 100_003 + step) % (2**63)


def _atomic_save(obj: Any, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


class _StopRequest:
    """Turns SIGINT/SIGTERM into a flag the loop checks after each step."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _StopRequest:
        if hasattr(signal, "SIGTERM") and _is_main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self.signal = signum

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def _is_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _num_classes(dataset: Dataset) -> int | None:
    base = getattr(dataset, "dataset", dataset)
    classes = getattr(base, "classes", None)
    if classes is not None:
        return len(classes)
    labels = getattr(base, "labels", None)
    return int(labels.max()) + 1 if labels is not None else None


# ----------------------------------------------------------------------------------- triplets
class _TripletMaker:
    """Makes x~ for a batch: FGSM/PGD/mix against classifier ``k`` (or AE + classifier when adaptive)."""

    def __init__(self, config: TrainConfig, classifiers: list[nn.Module]) -> None:
        self.config = config
        self.classifiers = classifiers
        self.fgsm = [FGSM(c, eps=config.eps) for c in classifiers]
        self.pgd = [
            PGD(c, eps=config.eps, alpha=config.step_size, steps=config.steps, random_start=config.random_start)
            for c in classifiers
        ]
        #: validation batch index -> (attacked batch against the first classifier alone, undefended clean and
        #: attacked correct counts), filled once by :func:`validate`
        self.validation_attacks: dict[int, tuple[torch.Tensor, int, int]] = {}

    def kind(self) -> str:
        parts = attack_parts(self.config.attack)
        part = parts[int(torch.randint(len(parts), ()))] if len(parts) > 1 else parts[0]
        if part == "mix":
            return "fgsm" if torch.rand(()) < 0.5 else "pgd"
        return part

    def __call__(self, x: torch.Tensor, y: torch.Tensor, ae: nn.Module | None = None, k: int = 0) -> torch.Tensor:
        kind = self.kind()
        sigma = gaussian_sigma(kind)
        if sigma is not None:  # noise triplets (denoised smoothing): clamp(x + N(0, sigma^2)), no classifier needed
            return (x + sigma * torch.randn_like(x)).clamp(0, 1)
        corruption = corruption_spec(kind)
        if corruption is not None:  # one corruption and severity per image, from the seeded global generator
            names, severities = corruption
            out = torch.empty_like(x)
            for i in range(len(x)):
                name = names[int(torch.randint(len(names), ()))]
                severity = severities[int(torch.randint(len(severities), ()))]
                out[i] = corrupt(x[i], name, severity)
            return out
        if self.config.adaptive and ae is not None:
            target = nn.Sequential(ae, self.classifiers[k])
            attack = (
                FGSM(target, eps=self.config.eps)
                if kind == "fgsm"
                else PGD(
                    target,
                    eps=self.config.eps,
                    alpha=self.config.step_size,
                    steps=self.config.steps,
                    random_start=self.config.random_start,
                )
            )
        else:
            attack = self.fgsm[k] if kind == "fgsm" else self.pgd[k]
        return attack(x, y).detach()


def _single_source(maker: _TripletMaker, part: str) -> _TripletMaker:
    """A triplet maker for one ``+``-part of ``maker``'s attack (validation measures the first part alone)."""
    return _TripletMaker(dataclasses.replace(maker.config, attack=part), maker.classifiers)


def _groups(index: torch.Tensor, count: int) -> list[tuple[int, torch.Tensor]]:
    """``(k, positions in the batch)`` of the training images judged by classifier ``k`` (image index mod count)."""
    if count == 1:
        return [(0, torch.arange(len(index)))]
    owner = index % count
    return [(k, (owner == k).nonzero().flatten()) for k in range(count) if (owner == k).any()]


def _labels_for(
    classifier: nn.Module, x: torch.Tensor, y: torch.Tensor, relabel: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """The classifier's clean logits on ``x`` and the labels to attack and guide with: ``y``, or its own
    predictions when the data was labelled by another classifier (``relabel``)."""
    with torch.no_grad():
        logits = classifier(x)
    return logits, (logits.argmax(1) if relabel else y)


def _cache_triplets(
    dataset: Dataset, maker: _TripletMaker, config: TrainConfig, out: Path, device: torch.device, relabel: bool
) -> np.ndarray:
    """Attack the whole training set once (8-bit, as the official code stored them); reused every epoch.

    Image ``i`` is attacked against classifier ``i mod K`` (with its own label when ``relabel``)."""
    path = out / CACHED_TRIPLETS
    if path.is_file():
        return np.load(path, mmap_mode="r")
    loader = DataLoader(
        _WithIndex(dataset),
        batch_size=config.batch_size,
        shuffle=False,
        collate_fn=_collate_indexed,
        num_workers=config.num_workers,
    )
    array: np.ndarray | None = None  # row i = training image i (undecodable images leave zeros, never read)
    for i, (x, y, index, _) in enumerate(tqdm(loader, desc="caching triplets", disable=not config.progress)):
        if len(y) == 0:
            continue
        torch.manual_seed(_step_seed(config.seed, -1, i))
        x, y = x.to(device), y.to(device)
        x_adv = torch.empty_like(x)
        for k, rows in _groups(index, len(maker.classifiers)):
            _, labels = _labels_for(maker.classifiers[k], x[rows], y[rows], relabel)
            x_adv[rows] = maker(x[rows], labels, k=k)
        if array is None:
            array = np.zeros((len(dataset), *x.shape[1:]), dtype=np.uint8)
        array[index.numpy()] = (x_adv * 255).round().to(torch.uint8).cpu().numpy()
    if array is None:
        raise ValueError("no decodable training image to attack")
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, array)
    os.replace(tmp, path)
    return array


class _WithIndex(Dataset):
    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, int] | None:
        item = self.dataset[index]
        return None if item is None else (item[0], item[1], index)


def _collate_indexed(batch: list) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    kept = [b for b in batch if b is not None]
    images, labels, skipped = collate_skipping([(b[0], b[1]) for b in kept] + [None] * (len(batch) - len(kept)))
    return images, labels, torch.as_tensor([b[2] for b in kept], dtype=torch.long), skipped


# ----------------------------------------------------------------------------------- validation
@torch.no_grad()
def _predict(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return model(x).argmax(1)


def validate(
    ae: nn.Module,
    classifier: nn.Module,
    maker: _TripletMaker,
    dataset: Dataset,
    config: TrainConfig,
    device: torch.device,
) -> dict[str, float]:
    """Clean and attacked accuracy with and without the AE, and PSNR of AE(x~) vs x, on ``dataset``."""
    was_training = ae.training
    ae.eval()
    # the training batch size bounds the memory of the validation attacks too (224 px PGD: ~80 MB per image)
    loader = DataLoader(
        dataset,
        batch_size=config.batch_size,
        shuffle=False,
        collate_fn=collate_skipping,
        num_workers=config.num_workers,
    )
    totals = {
        "n": 0,
        "clean_acc_undefended": 0.0,
        "attacked_acc_undefended": 0.0,
        "clean_acc": 0.0,
        "attacked_acc": 0.0,
        "psnr": 0.0,
    }
    for i, (x, y, _) in enumerate(loader):
        if config.val_limit is not None:
            if totals["n"] >= config.val_limit:
                break
            x, y = x[: config.val_limit - totals["n"]], y[: config.val_limit - totals["n"]]
        x, y = x.to(device), y.to(device)
        if i not in maker.validation_attacks:  # the attack ignores the AE: made once, reused every epoch
            torch.manual_seed(_step_seed(config.seed, -2, i))
            first = attack_parts(config.attack)[0]  # validation measures the first triplet source
            if first in ("pgd", "mix"):
                x_adv = maker.pgd[0](x, y)
            elif first == "fgsm":
                x_adv = maker.fgsm[0](x, y)
            else:  # noise or corruptions: a seeded draw of the same source
                x_adv = maker(x, y) if len(attack_parts(config.attack)) == 1 else _single_source(maker, first)(x, y)
            with torch.no_grad():
                undefended = (
                    (_predict(classifier, x) == y).sum().item(),
                    (_predict(classifier, x_adv) == y).sum().item(),
                )
            maker.validation_attacks[i] = (x_adv, *undefended)
        x_adv, clean_correct, attacked_correct = maker.validation_attacks[i]
        with torch.no_grad():
            recon_clean, recon_adv = ae(x).clamp(0, 1), ae(x_adv).clamp(0, 1)
        totals["n"] += len(y)
        totals["clean_acc_undefended"] += clean_correct
        totals["attacked_acc_undefended"] += attacked_correct
        totals["clean_acc"] += (_predict(classifier, recon_clean) == y).sum().item()
        totals["attacked_acc"] += (_predict(classifier, recon_adv) == y).sum().item()
        totals["psnr"] += psnr(recon_adv, x).sum().item()
    ae.train(was_training)
    n = max(totals.pop("n"), 1)
    return {k: v / n for k, v in totals.items()} | {"n": n}


# ----------------------------------------------------------------------------------- the loop
def train(config: TrainConfig, _setup: Any = None) -> Path:
    """Train a reconstructive defense; returns the ``<out>/final`` folder (``from_pretrained``-loadable).

    From Python with your own classifier and dataset objects, use :func:`recondefense.train.fit`.

    Raises:
        FileNotFoundError: missing data folder, or ``resume`` without a checkpoint.
        FileExistsError: ``out`` holds another run and neither ``resume`` nor ``overwrite`` is set.
        ValueError: empty dataset, or a classifier whose class count does not match the labels.
        FloatingPointError: a NaN/Inf loss (the last good checkpoint is left intact).
        TrainingInterrupted: SIGINT/SIGTERM (after saving a checkpoint).
    """
    validate_config(config)
    rank, world, local_rank = _distributed()
    device = _device(config, local_rank)
    if world > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    out = Path(config.out)
    if rank == 0:
        _check_out(out, config)
    if world > 1:
        dist.barrier()
    try:
        return _train(config, rank, world, device, out, None if _setup is None else _setup(device))
    finally:
        if world > 1 and dist.is_initialized():
            dist.destroy_process_group()


@dataclasses.dataclass
class _Setup:
    """What a run trains with: frozen pixel-space classifiers (the first labels and is validated), the
    training and validation datasets of ``(image, label)`` items, a start network and how to describe them."""

    classifiers: list[nn.Module]
    names: list[str]
    train_set: Dataset
    val_set: Dataset
    start: ReconstructiveDefense | None
    data_name: str


def _setup_from_config(config: TrainConfig, device: torch.device) -> _Setup:
    """``recondefense train``: classifiers, data and start weights named by the config's spec strings."""
    names = _classifier_specs(config.classifier)
    classifiers = [
        load_classifier(spec, config.classifier_weights, mean=config.mean, std=config.std).to(device) for spec in names
    ]
    # the (first) classifier labels unlabelled data ("photos") with its own clean predictions
    data = {"image_size": config.image_size, "classifier": classifiers[0], "num_workers": config.num_workers}
    train_set = load_dataset(config.data, "train", **data)
    val_set = load_dataset(config.data, "val", **data)
    start = None if config.init_from is None else ReconstructiveDefense.from_pretrained(config.init_from)
    return _Setup(classifiers, names, train_set, val_set, start, config.data)


def _train(
    config: TrainConfig, rank: int, world: int, device: torch.device, out: Path, setup: _Setup | None = None
) -> Path:
    torch.manual_seed(config.seed)
    setup = setup or _setup_from_config(config, device)
    classifiers, train_set, val_set = setup.classifiers, setup.train_set, setup.val_set
    classifier = classifiers[0]
    if len(train_set) == 0:
        raise ValueError(f"the training data {setup.data_name!r} is empty")
    # with several classifiers, each one attacks and judges its images against its own clean prediction
    relabel = len(classifiers) > 1 and getattr(train_set, "labelled_by_classifier", False)
    probe = next((item for item in (train_set[i] for i in range(min(len(train_set), 64))) if item is not None), None)
    if probe is None:
        raise ValueError(f"the training data {setup.data_name!r}: none of the first 64 images can be decoded")
    in_channels = probe[0].shape[0]
    classes = _num_classes(train_set)
    for spec, model_k in zip(setup.names, classifiers):
        with torch.no_grad():
            outputs = model_k(probe[0].unsqueeze(0).to(device)).shape[-1]
        if classes is not None and classes != outputs:
            raise ValueError(
                f"the classifier {spec!r} outputs {outputs} classes but the data {setup.data_name!r} has {classes}: "
                "pass the classifier trained on these labels"
            )
    ae = _build_network(config, in_channels, setup.start).to(device)
    use_cuda = device.type == "cuda"
    if use_cuda and config.channels_last:
        ae = ae.to(memory_format=torch.channels_last)
    model: nn.Module = ae
    if world > 1:
        model = nn.parallel.DistributedDataParallel(ae, device_ids=[device.index] if use_cuda else None)
    frozen = [prefix for prefix in (config.freeze or "").split(",") if prefix]
    trained = [p for name, p in ae.named_parameters() if not any(name.startswith(f) for f in frozen)]
    if not trained:
        raise ValueError(f"--freeze {config.freeze!r} leaves no parameter to train")
    for name, p in ae.named_parameters():
        p.requires_grad_(not any(name.startswith(f) for f in frozen))
    opt = torch.optim.Adam(trained, lr=config.lr)
    steps_per_epoch = math.ceil(math.ceil(len(train_set) / world) / config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    if config.lr_schedule == "cosine":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(total_steps, 1))
    elif config.lr_schedule == "constant":
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0)
    else:
        raise ValueError(f"unknown lr_schedule {config.lr_schedule!r}: expected constant or cosine")
    maker = _TripletMaker(config, classifiers)
    epoch, step_in_epoch, global_step, skipped_images = 0, 0, 0, 0
    changed: dict[str, tuple] = {}
    if config.resume:
        state = _load_checkpoint(out / CHECKPOINT, device)
        changed = changed_fields(state["config"], config)
        refused = {k: v for k, v in changed.items() if k not in _RESUMABLE_CHANGES}
        if refused:
            raise ValueError(
                "--resume with other settings than the checkpoint's: "
                + ", ".join(
                    f"--{k.replace('_', '-')} {new!r} (checkpoint: {old!r})" for k, (old, new) in refused.items()
                )
                + "; start a new --out, or resume with the checkpoint's settings"
            )
        ae.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        epoch, step_in_epoch, global_step = state["epoch"], state["step_in_epoch"], state["global_step"]
        skipped_images = state["skipped_images"]
        torch.set_rng_state(state["rng_torch"])
        np.random.set_state(tuple(state["rng_numpy"]))  # type: ignore[arg-type]
        logger.info("resumed from %s at epoch %d, step %d", out / CHECKPOINT, epoch, step_in_epoch)
    if rank == 0 and config.resume:
        _trim_metrics(out / METRICS, global_step, epoch)
    elif rank == 0 and config.overwrite:
        _clear_previous_run(out)  # the new run has loaded its data and models: now the old one may go
    cached = None
    if config.triplets == "cached":
        if config.adaptive:
            raise ValueError("adaptive triplets depend on the current AE and cannot be cached; use triplets='online'")
        cached = _cache_triplets(train_set, maker, config, out, device, relabel) if rank == 0 else None
        if world > 1:
            dist.barrier()
            cached = cached if cached is not None else np.load(out / CACHED_TRIPLETS, mmap_mode="r")
    elif config.triplets != "online":
        raise ValueError(f"unknown triplets mode {config.triplets!r}: expected online or cached")
    metrics_file = open(out / METRICS, "a") if rank == 0 else None
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if use_cuda and config.amp else nullcontext()

    def log(record: dict[str, Any]) -> None:
        if metrics_file is not None:
            metrics_file.write(json.dumps(record) + "\n")
            metrics_file.flush()

    def checkpoint() -> None:
        if rank != 0:
            return
        _atomic_save(
            {
                "model": ae.state_dict(),
                "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(),
                "epoch": epoch,
                "step_in_epoch": step_in_epoch,
                "global_step": global_step,
                "skipped_images": skipped_images,
                "rng_torch": torch.get_rng_state(),
                "rng_numpy": [v.tolist() if isinstance(v, np.ndarray) else v for v in np.random.get_state()],
                "config": dataclasses.asdict(config),
            },
            out / CHECKPOINT,
        )

    sampler = DistributedSampler(
        _WithIndex(train_set), num_replicas=world, rank=rank, shuffle=True, seed=config.seed, drop_last=False
    )
    if config.resume and changed:
        log({"resumed_at_step": global_step, "changed": {k: list(v) for k, v in changed.items()}})
    start_time = time.time()
    with _StopRequest() as stop:
        while epoch < config.epochs:
            epoch_start = time.time()
            sampler.set_epoch(epoch)
            order = list(sampler)[step_in_epoch * config.batch_size :]
            loader = DataLoader(
                _WithIndex(train_set),
                batch_size=config.batch_size,
                sampler=order,
                collate_fn=_collate_indexed,
                num_workers=config.num_workers,
            )
            warmup = epoch < config.warmup_epochs
            _train_mode(ae, frozen)
            bar = tqdm(
                loader,
                desc=f"epoch {epoch + 1}/{config.epochs} {'warm-up' if warmup else 'joint'}",
                disable=not config.progress or rank != 0,
                leave=False,
            )
            for x, y, index, skipped in bar:
                skipped_images += skipped
                if len(y) == 0:
                    step_in_epoch += 1
                    continue
                torch.manual_seed(_step_seed(config.seed, epoch, step_in_epoch + rank * 7919))
                x, y = x.to(device), y.to(device)
                groups = _groups(index, len(classifiers))
                if cached is not None:
                    x_adv = torch.from_numpy(np.asarray(cached[index.numpy()])).to(device).float().div(255)
                    x = (x * 255).round() / 255  # 8-bit like the cached x~, so 8-bit rounding tells nothing apart
                else:
                    x_adv = torch.empty_like(x)
                    for k, rows in groups:
                        _, labels = _labels_for(classifiers[k], x[rows], y[rows], relabel)
                        x_adv[rows] = maker(x[rows], labels, ae, k=k)
                    _train_mode(ae, frozen)
                keep_clean = torch.zeros(len(x), dtype=torch.bool, device=device)
                if config.clean_fraction > 0:  # beyond the paper: some inputs stay clean
                    keep_clean = torch.rand(len(x), device=device) < config.clean_fraction
                    x_adv = torch.where(keep_clean.view(-1, 1, 1, 1), x, x_adv)
                if use_cuda and config.channels_last:
                    x_adv = x_adv.contiguous(memory_format=torch.channels_last)
                with autocast:
                    recon = model(x_adv).float()
                    parts = visual_loss(recon, x, alpha=config.alpha, beta=config.beta, c=config.c)
                    if warmup:
                        loss, ce, acc = parts.total, None, None
                    elif config.ce_weight > 0 or config.clean_weight > 0:
                        recon_clean = model(x).float() if config.clean_weight > 0 else None
                        guide, clean_guide, correct = _guidance(
                            config, classifiers, groups, x, y, recon, recon_clean, relabel
                        )
                        loss = config.visual_weight * parts.total + config.ce_weight * guide
                        if recon_clean is not None:
                            loss = loss + config.clean_weight * clean_guide
                        ce, acc = guide.item(), correct / len(y)
                    else:  # no classifier in the loop (e.g. only the gate's detection loss)
                        loss, ce, acc = config.visual_weight * parts.total, None, None
                    if config.gate_weight > 0:
                        loss = loss + config.gate_weight * _gate_loss(ae, x, x_adv, keep_clean)
                if not torch.isfinite(loss):
                    raise FloatingPointError(
                        f"non-finite loss ({loss.item()}) at epoch {epoch + 1}, step {step_in_epoch}: training stopped; "
                        f"the last good checkpoint in {out / CHECKPOINT} is intact (lower --lr or check the data)"
                    )
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                step_in_epoch += 1
                global_step += 1
                with torch.no_grad():
                    batch_psnr = psnr(recon.detach(), x).mean().item()
                bar.set_postfix(
                    loss=f"{loss.item():.3f}",
                    psnr=f"{batch_psnr:.1f}",
                    **({} if ce is None else {"ce": f"{ce:.3f}", "acc": f"{acc:.2f}"}),
                )
                if global_step % config.log_every == 0 or global_step == 1:
                    log(
                        {
                            "step": global_step,
                            "epoch": epoch + 1,
                            "phase": "warmup" if warmup else "joint",
                            "loss": loss.item(),
                            "rmse": parts.rmse.item(),
                            "psnr_term": parts.psnr_term.item(),
                            "guidance": ce,
                            "train_acc": acc,
                            "psnr": batch_psnr,
                            "lr": sched.get_last_lr()[0],
                            "seconds": round(time.time() - start_time, 1),
                        }
                    )
                if global_step % config.checkpoint_every == 0:
                    checkpoint()
                if stop.signal is not None:
                    checkpoint()
                    raise TrainingInterrupted(
                        f"stopped by signal {stop.signal} at step {global_step}; resume with --resume (checkpoint in {out})"
                    )
                if config.stop_after_steps is not None and global_step >= config.stop_after_steps:
                    checkpoint()
                    logger.info("stopped after %d steps as asked; resume with --resume", global_step)
                    return out / CHECKPOINT
            epoch += 1
            step_in_epoch = 0
            if rank == 0:
                val = validate(ae, classifier, maker, val_set, config, device)
                log({"epoch": epoch, "validation": val, "skipped_images": skipped_images})
                logger.info("epoch %d validation: %s", epoch, {k: round(v, 4) for k, v in val.items()})
            checkpoint()
            if world > 1:
                dist.barrier()
            if config.max_minutes is not None and epoch < config.epochs:
                epoch_seconds = time.time() - epoch_start
                out_of_time = torch.tensor(float(time.time() - start_time + epoch_seconds > 60 * config.max_minutes))
                if world > 1:  # rank 0's clock decides for all
                    out_of_time = out_of_time.to(device)
                    dist.broadcast(out_of_time, 0)
                if out_of_time.item():
                    logger.info(
                        "--max-minutes %s: stopping after epoch %d of %d", config.max_minutes, epoch, config.epochs
                    )
                    log({"stopped_early": True, "epoch": epoch, "epoch_seconds": round(epoch_seconds, 1)})
                    break
    agree = _ranks_agree(ae, world)
    final = out / "final"
    if rank == 0:
        val = validate(ae, classifier, maker, val_set, config, device)
        log({"final": True, "validation": val, "ranks_agree": agree, "skipped_images": skipped_images})
        _save_final(ae, config, val, final, epochs_trained=epoch)
    if metrics_file is not None:
        metrics_file.close()
        plot_curves(out / METRICS)
    return final


def _classifier_specs(text: str) -> list[str]:
    specs = [part.strip() for part in text.split(",") if part.strip()]
    if not specs:
        raise ValueError(f"no classifier in {text!r}")
    return specs


def _build_network(config: TrainConfig, in_channels: int, start: ReconstructiveDefense | None) -> nn.Module:
    """The purifier ``config.arch``, randomly initialised or started from ``start`` (``config.init_from``).

    A ``"detail"`` network may start from trained ``"recon"`` weights: they fill its bottleneck AE and the
    zero-initialised detail path makes it compute exactly that AE at step 0. A ``"gated"`` one may start from
    trained weights of its ``config.inner`` kind: they fill the purifier behind the gate."""
    net = build_purifier(
        config.arch,
        in_channels=in_channels,
        width=config.width,
        depth=config.depth,
        skip=config.skip,
        detail_width=config.detail_width,
        detail_depth=config.detail_depth,
        inner=config.inner,
    )
    if start is None:
        return net
    wrapped = {"detail": "recon", "gated": config.inner}.get(config.arch)  # what the network holds inside
    target = net.bottleneck if wrapped is not None and start.arch == wrapped else net
    try:
        target.load_state_dict(start.autoencoder.state_dict())
    except RuntimeError as err:
        raise ValueError(
            f"--init-from {config.init_from or 'defense'!r} holds a {start.arch!r} network that does not match --arch "
            f"{config.arch} with --width {config.width} --depth {config.depth} --skip {config.skip}: {err}"
        ) from err
    return net


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
        clean_logits, labels = _labels_for(classifiers[k], x[rows], y[rows], relabel)
        share = len(rows) / len(y)
        logits = classifiers[k](recon[rows])
        guide = guide + share * guidance_loss(logits, clean_logits, labels, config.guidance)
        correct += int((logits.argmax(1) == labels).sum())
        if recon_clean is not None:
            logits_clean = classifiers[k](recon_clean[rows])
            clean_guide = clean_guide + share * guidance_loss(logits_clean, clean_logits, labels, config.guidance)
    return guide, clean_guide, correct


def _gate_loss(ae: nn.Module, x: torch.Tensor, x_adv: torch.Tensor, kept_clean: torch.Tensor) -> torch.Tensor:
    """Detection loss of a gated purifier's gate: binary cross-entropy, open (1) on attacked or corrupted
    images, closed (0) on clean ones (inputs left clean by ``--clean-fraction`` count as clean)."""
    gate = getattr(ae, "gate_logit", None)
    if gate is None:
        raise ValueError("--gate-weight needs --arch gated (a purifier with a gate)")
    logits = torch.cat([gate(x_adv), gate(x)])
    targets = torch.cat([(~kept_clean).float(), torch.zeros(len(x), device=x.device)])
    return F.binary_cross_entropy_with_logits(logits, targets)


def _train_mode(ae: nn.Module, frozen: list[str]) -> None:
    """Training mode, except the frozen sub-networks: they stay in eval mode (batch norm statistics kept)."""
    ae.train()
    for name, module in ae.named_modules():
        if name and any(name.startswith(prefix) for prefix in frozen):
            module.eval()


def _ranks_agree(ae: nn.Module, world: int) -> bool:
    if world == 1:
        return True
    checksum = torch.stack([p.detach().double().sum() for p in ae.parameters()]).sum().reshape(1).cpu()
    gathered = [torch.zeros_like(checksum) for _ in range(world)]
    dist.all_gather(gathered, checksum)
    return all(torch.equal(g, gathered[0]) for g in gathered)


def _save_final(ae: nn.Module, config: TrainConfig, val: dict[str, float], final: Path, epochs_trained: int) -> None:
    """``final/``: weights, config.json with the run's meta, and the model card rendered from that meta."""
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
        "classifier": config.classifier,
        "attack": attack,
        "adaptive": config.adaptive,
        "clean_fraction": config.clean_fraction,
        "guidance": config.guidance,
        "clean_weight": config.clean_weight,
        "input_mean": config.mean,
        "input_std": config.std,
        "validation": val,
        "command": command,
        "epochs_trained": epochs_trained,
        "train_config": {k: v for k, v in dataclasses.asdict(config).items() if k != "extra_meta"},
        "recondefense_version": __version__,
        **config.extra_meta,
    }
    defense = ReconstructiveDefense(
        ae.in_channels,
        config.width,
        config.depth,
        config.skip,
        meta=meta,
        arch=config.arch,
        detail_width=config.detail_width,
        detail_depth=config.detail_depth,
        inner=config.inner,
    )
    defense.autoencoder.load_state_dict({k: v.float().contiguous() for k, v in ae.state_dict().items()})
    (final / "README.md").unlink(missing_ok=True)  # a resumed run writes its card anew
    defense.save_pretrained(final)
