"""Algorithm 1: warm-up on the visual loss, then the GAN-like phase with the frozen classifier.

Machinery: DistributedDataParallel under ``torchrun`` (gloo on CPU, nccl on CUDA), bfloat16 autocast and
channels_last on CUDA, atomic checkpoints with exact resume (each step re-seeds from ``(seed, epoch, step)`` and the
sampler skips consumed batches), SIGINT/SIGTERM checkpoint-and-exit, a NaN/Inf guard, tqdm progress,
``metrics.jsonl``, per-epoch validation and a final ``save_pretrained`` folder with a model card.

This module holds :func:`train` and the epoch/step loop (:class:`_Run`); the triplets are made in :mod:`.triplets`,
validation in :mod:`.validation`, the run's files in :mod:`.checkpoints`, the network, its losses and its ``final/``
folder in :mod:`.network`, what it trains with (classifiers, data, start weights) in :mod:`.setup`.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any, NamedTuple

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler
from tqdm.auto import tqdm

from ..losses import VisualLossParts
from ..metrics import psnr
from .architecture import start_settings
from .checkpoints import (
    CHECKPOINT,
    LEGACY_CHECKPOINT,
    METRICS,
    MetricsLog,
    Position,
    StopRequest,
    check_out,
    clear_previous_run,
    find_checkpoint,
    load_checkpoint,
    resume_checkpoint,
    save_checkpoint,
    trim_metrics,
)
from .config import TrainConfig, validate_config
from .curves import plot_curves
from .distributed import ranks_agree, torchrun_ranks, train_device
from .network import AnySize, build_network, optimizer, probe, save_final, train_loss, train_mode
from .setup import Setup, setup_from_config
from .triplets import (
    TripletMaker,
    WithIndex,
    attack_groups,
    check_labels,
    classifier_groups,
    collate_indexed,
    step_seed,
    triplet_cache,
)
from .validation import small_validation_note, validate

__all__ = ["train", "TrainingInterrupted"]

logger = logging.getLogger(__name__)


class TrainingInterrupted(RuntimeError):
    """Raised by :func:`train` after SIGINT/SIGTERM once the checkpoint is saved."""


def train(config: TrainConfig, _setup: Any = None) -> Path:
    """Train a reconstructive defense.

    From Python with your own classifier and dataset objects, use :func:`recondefense.train.fit`.

    Returns:
        The ``<out>/final`` folder (``from_pretrained``-loadable); when ``stop_after_steps`` ends the run
        early, the path of ``<out>/checkpoint.safetensors`` instead (continue it with ``resume``).

    Raises:
        FileNotFoundError: missing data folder, or ``resume`` without a checkpoint.
        FileExistsError: ``out`` holds another run (a checkpoint or final weights) and neither ``resume`` nor
            ``overwrite`` is set; a folder a run left without either (it failed early) is reused.
        ValueError: a bad setting, empty dataset, images the classifier cannot take, or labels outside the
            classifier's classes.
        FloatingPointError: a NaN/Inf loss (the last good checkpoint is left intact).
        TrainingInterrupted: SIGINT/SIGTERM (after saving a checkpoint).
    """
    validate_config(config)
    rank, world, local_rank = torchrun_ranks()
    device = train_device(config, local_rank)
    if world > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    out = Path(config.out)
    if rank == 0:
        check_out(out, config)
    if world > 1:
        dist.barrier()
    try:
        setup = None if _setup is None else _setup(device)
        torch.manual_seed(config.seed)
        final = _Run(config, rank, world, device, out, setup or setup_from_config(config, device)).run()
        if world > 1:  # no rank tears the process group down while another still writes (gloo aborts)
            dist.barrier()
        return final
    finally:
        if world > 1 and dist.is_initialized():
            dist.destroy_process_group()


# ----------------------------------------------------------------------------------- the loop
class _Step(NamedTuple):
    """What one optimisation step reports: its loss and terms, the guidance and train accuracy (None in
    warm-up or without a classifier in the loss) and the batch PSNR of AE(x~) vs x."""

    loss: torch.Tensor
    parts: VisualLossParts
    guidance: float | None
    train_acc: float | None
    psnr: float


class _Run:
    """One training run on this rank: built from a :class:`Setup` (network, optimiser, triplet source, and
    the checkpoint's position on resume), advanced by :meth:`run` epoch by epoch and step by step."""

    def __init__(
        self, config: TrainConfig, rank: int, world: int, device: torch.device, out: Path, setup: Setup
    ) -> None:
        if setup.start is not None:  # what the start weights do besides the networks this run trains
            config = dataclasses.replace(config, start_settings=start_settings(setup.start.hyperparameters, config))
        elif config.resume and (found := find_checkpoint(out)) is not None:
            # resumed without --init-from (e.g. on a machine with only the committed checkpoint): the weights come
            # from the checkpoint, and the run keeps the start it had (its name and settings) for its final weights
            saved = load_checkpoint(found, "cpu")["config"]
            config = dataclasses.replace(
                config, init_from=saved.get("init_from"), start_settings=saved.get("start_settings", {})
            )
        self.config, self.rank, self.world, self.device, self.out = config, rank, world, device, out
        self.classifiers, self.train_set, self.val_set = setup.classifiers, setup.train_set, setup.val_set
        # with several classifiers, each one attacks and judges its images against its own clean prediction
        self.relabel = len(self.classifiers) > 1 and getattr(self.train_set, "labelled_by_classifier", False)
        in_channels, self.classes = probe(self.train_set, setup.names, self.classifiers, setup.data_name, device)
        ae = build_network(config, in_channels, setup.start).to(device)
        self.use_cuda = device.type == "cuda"
        # channels-last inputs: on CUDA, and on the CPU for colour images, where oneDNN runs the AE's thin
        # convolutions and the classifier's attack passes faster (one-channel images keep the usual layout)
        self.channels_last = config.channels_last and (self.use_cuda or in_channels >= 3)
        if self.use_cuda and config.channels_last:
            ae = ae.to(memory_format=torch.channels_last)
        self.ae = ae
        # what the steps run: the network on any image size, padded to its stride and cropped back (as at inference)
        self.purifier = AnySize(ae)
        self.model: nn.Module = self.purifier
        if world > 1:
            self.model = nn.parallel.DistributedDataParallel(
                self.purifier, device_ids=[device.index] if self.use_cuda else None
            )
        steps_per_epoch = math.ceil(math.ceil(len(self.train_set) / world) / config.batch_size)
        self.frozen, self.opt, self.sched = optimizer(config, ae, steps_per_epoch)
        self.maker = TripletMaker(config, self.classifiers)
        position, changed = Position(), {}
        if config.resume:
            found = find_checkpoint(out)
            assert found is not None  # check_out made sure
            position, changed = resume_checkpoint(found, device, config, ae, self.opt, self.sched)
            logger.info("resumed from %s at epoch %d, step %d", found, position.epoch, position.step_in_epoch)
        self.position = position
        if rank == 0 and config.resume:
            trim_metrics(out / METRICS, position.global_step, position.epoch)
        elif rank == 0 and config.overwrite:
            clear_previous_run(out)  # the new run has loaded its data and models: now the old one may go
        elif rank == 0:  # the records of a run that failed before its first checkpoint (a triplet cache is kept)
            (out / METRICS).unlink(missing_ok=True)
        self.cached = triplet_cache(self.train_set, self.maker, config, out, device, self.relabel, rank, world)
        self.log = MetricsLog(out / METRICS if rank == 0 else None)
        self.autocast = nullcontext()
        if (self.use_cuda and config.amp) or (not self.use_cuda and config.cpu_amp):
            self.autocast = torch.autocast(device.type, dtype=torch.bfloat16)
        self.sampler = DistributedSampler(
            WithIndex(self.train_set), num_replicas=world, rank=rank, shuffle=True, seed=config.seed, drop_last=False
        )
        if config.resume and changed:
            self.log({"resumed_at_step": position.global_step, "changed": {k: list(v) for k, v in changed.items()}})
        expected = len(self.val_set) if config.val_limit is None else min(len(self.val_set), config.val_limit)
        self.warned_validation = rank == 0 and small_validation_note(expected) is not None
        if self.warned_validation:
            logger.warning("%s", small_validation_note(expected))

    def run(self) -> Path:
        """The epochs left, then the final validation and ``final/``; the checkpoint's path when
        ``stop_after_steps`` ends the run early."""
        self.start_time = time.time()
        try:
            if self.at_stop():  # a run resumed where it was told to stop: no step
                return self.out / CHECKPOINT
            with StopRequest() as stop:
                while self.position.epoch < self.config.epochs:
                    epoch_start = time.time()
                    if self.epoch(stop):
                        return self.out / CHECKPOINT
                    if self.end_epoch(epoch_start):
                        break
            return self.finish()
        finally:
            self.log.close()

    def epoch(self, stop: StopRequest) -> bool:
        """The steps left in the current epoch; True when ``stop_after_steps`` is reached."""
        config, position = self.config, self.position
        self.sampler.set_epoch(position.epoch)
        order = list(self.sampler)[position.step_in_epoch * config.batch_size :]
        loader = DataLoader(
            WithIndex(self.train_set) if self.cached is None else self.cached.items(self.train_set),
            batch_size=config.batch_size,
            sampler=order,
            collate_fn=collate_indexed,
            num_workers=config.num_workers,
        )
        warmup = position.epoch < config.warmup_epochs
        train_mode(self.ae, self.frozen)
        bar = tqdm(
            loader,
            desc=f"epoch {position.epoch + 1}/{config.epochs} {'warm-up' if warmup else 'joint'}",
            disable=not config.progress or self.rank != 0,
            leave=False,
        )
        with bar:  # closed (its line cleared) before anything is logged after it, on every way out
            for x, y, index, skipped in bar:
                position.skipped_images += skipped
                if len(y) == 0:
                    position.step_in_epoch += 1
                    continue
                step = self.step(x, y, index, warmup)
                bar.set_postfix(
                    loss=f"{step.loss.item():.3f}",
                    psnr=f"{step.psnr:.1f}",
                    **({} if step.guidance is None else {"ce": f"{step.guidance:.3f}", "acc": f"{step.train_acc:.2f}"}),
                )
                if position.global_step % config.log_every == 0 or position.global_step == 1:
                    self.log(self.step_record(step, warmup))
                if self.after_step(stop):
                    break
            else:
                return False
        logger.info("stopped after %d steps as asked; resume with --resume", position.global_step)
        return True

    def step(self, x: torch.Tensor, y: torch.Tensor, index: torch.Tensor, warmup: bool) -> _Step:
        """One optimisation step on a batch, seeded by ``(seed, epoch, step, rank)``."""
        config, position, device = self.config, self.position, self.device
        torch.manual_seed(step_seed(config.seed, position.epoch, position.step_in_epoch + self.rank * 7919))
        check_labels(y, self.classes)
        x, y = x.to(device), y.to(device)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        groups = classifier_groups(index, len(self.classifiers))
        if self.cached is not None:
            x, x_adv, routes = self.cached.batch(index, x, device)
        else:
            x_adv, routes = attack_groups(self.maker, x, y, groups, self.relabel, self.purifier)
            train_mode(self.ae, self.frozen)
        if config.clean_fraction > 0:  # beyond the paper: some inputs stay clean (route 0)
            keep_clean = torch.rand(len(x), device=device) < config.clean_fraction
            x_adv, routes = torch.where(keep_clean.view(-1, 1, 1, 1), x, x_adv), routes.masked_fill(keep_clean, 0)
        if self.channels_last:
            x_adv = x_adv.contiguous(memory_format=torch.channels_last)
        with self.autocast:
            recon, parts, loss, guidance, train_acc = train_loss(
                config, self.ae, self.model, self.classifiers, groups, x, y, x_adv, routes, warmup, self.relabel
            )
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"non-finite loss ({loss.item()}) at epoch {position.epoch + 1}, step {position.step_in_epoch}: "
                f"training stopped; the last good checkpoint in {self.out / CHECKPOINT} is intact (lower --lr or "
                "check the data)"
            )
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.sched.step()
        position.step_in_epoch += 1
        position.global_step += 1
        with torch.no_grad():
            batch_psnr = psnr(recon.detach(), x).mean().item()
        return _Step(loss, parts, guidance, train_acc, batch_psnr)

    def step_record(self, step: _Step, warmup: bool) -> dict[str, Any]:
        """The step's line of ``metrics.jsonl``."""
        return {
            "step": self.position.global_step,
            "epoch": self.position.epoch + 1,
            "phase": "warmup" if warmup else "joint",
            "loss": step.loss.item(),
            "rmse": step.parts.rmse.item(),
            "psnr_term": step.parts.psnr_term.item(),
            "guidance": step.guidance,
            "train_acc": step.train_acc,
            "psnr": step.psnr,
            "lr": self.sched.get_last_lr()[0],
            "seconds": round(time.time() - self.start_time, 1),
        }

    def after_step(self, stop: StopRequest) -> bool:
        """Checkpoint every ``checkpoint_every`` steps; on SIGINT/SIGTERM checkpoint and raise
        :class:`TrainingInterrupted`; True (after a checkpoint) once ``stop_after_steps`` is reached."""
        config, global_step = self.config, self.position.global_step
        if global_step % config.checkpoint_every == 0:
            self.checkpoint()
        if stop.signal is not None:
            self.checkpoint()
            raise TrainingInterrupted(
                f"stopped by signal {stop.signal} at step {global_step}; resume with --resume (checkpoint in {self.out})"
            )
        if self.at_stop():
            self.checkpoint()
            return True
        return False

    def at_stop(self) -> bool:
        """True once the run has made its ``stop_after_steps`` steps."""
        return self.config.stop_after_steps is not None and self.position.global_step >= self.config.stop_after_steps

    def end_epoch(self, epoch_start: float) -> bool:
        """Validate (rank 0) and checkpoint the finished epoch; True when ``--max-minutes`` leaves no time for
        another (rank 0's clock decides for all ranks)."""
        config, position = self.config, self.position
        position.epoch += 1
        position.step_in_epoch = 0
        if self.rank == 0:
            val = self.validate()
            self.log({"epoch": position.epoch, "validation": val, "skipped_images": position.skipped_images})
            logger.info("epoch %d validation: %s", position.epoch, {k: round(v, 4) for k, v in val.items()})
        self.checkpoint()
        if self.world > 1:
            dist.barrier()
        if config.max_minutes is None or position.epoch >= config.epochs:
            return False
        epoch_seconds = time.time() - epoch_start
        out_of_time = torch.tensor(float(time.time() - self.start_time + epoch_seconds > 60 * config.max_minutes))
        if self.world > 1:  # rank 0's clock decides for all
            out_of_time = out_of_time.to(self.device)
            dist.broadcast(out_of_time, 0)
        if not out_of_time.item():
            return False
        logger.info(
            "--max-minutes %s: stopping after epoch %d of %d", config.max_minutes, position.epoch, config.epochs
        )
        self.log({"stopped_early": True, "epoch": position.epoch, "epoch_seconds": round(epoch_seconds, 1)})
        return True

    def validate(self) -> dict[str, float]:
        """Validation of the network as it is now, with the first classifier (rank 0 only)."""
        return validate(self.ae, self.classifiers[0], self.maker, self.val_set, self.config, self.device)

    def checkpoint(self) -> None:
        if self.rank == 0:
            save_checkpoint(self.out / CHECKPOINT, self.ae, self.opt, self.sched, self.position, self.config)
            (self.out / LEGACY_CHECKPOINT).unlink(missing_ok=True)  # an older run's, now superseded

    def finish(self) -> Path:
        """Final validation (rank 0) and the ``final/`` folder, after checking that all ranks hold the same weights."""
        agree = ranks_agree(self.ae, self.world)
        final = self.out / "final"
        if self.rank == 0:
            val = self.validate()
            self.log(
                {"final": True, "validation": val, "ranks_agree": agree, "skipped_images": self.position.skipped_images}
            )
            note = small_validation_note(int(val["n"]))
            if note and not self.warned_validation:
                logger.warning("%s", note)
            save_final(self.ae, self.config, val, final, epochs_trained=self.position.epoch, validation_note=note)
            self.log.close()
            plot_curves(self.out / METRICS)
        return final
