"""A run's files in ``--out``: the checks before a run starts, atomic checkpoints and exact resume,
``metrics.jsonl`` (trimmed back to the checkpoint on resume) and SIGINT/SIGTERM as a stop request."""

from __future__ import annotations

import dataclasses
import json
import shutil
import signal
import threading
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..files import write_atomic
from .config import TrainConfig, changed_fields
from .triplets import CACHED_CLEAN, CACHED_LABELS, CACHED_PARTS, CACHED_TRIPLETS

CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.jsonl"

#: Settings a resumed run may change; the change is recorded in metrics.jsonl.
_RESUMABLE_CHANGES = {"epochs", "stop_after_steps", "max_minutes"}


def check_out(out: Path, config: TrainConfig) -> None:
    """Check ``out`` before anything is read or deleted: resumable, free (or ``overwrite``), and writable.

    A folder with neither a checkpoint nor final weights (a run that failed before its first checkpoint left
    only ``metrics.jsonl``) is free: a new run replaces its records."""
    used = out.is_dir() and any((out / n).exists() for n in (CHECKPOINT, "final"))
    if config.resume:
        if not (out / CHECKPOINT).is_file():
            raise FileNotFoundError(
                f"--resume: no {CHECKPOINT} in {out} to resume from (a run that failed before its first "
                "checkpoint leaves none): run again without --resume"
            )
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


def clear_previous_run(out: Path) -> None:
    """``--overwrite``: remove the previous run's files, once the new run has loaded its data and models."""
    for name in (CHECKPOINT, METRICS, CACHED_TRIPLETS, CACHED_CLEAN, CACHED_LABELS):
        (out / name).unlink(missing_ok=True)
    shutil.rmtree(out / "final", ignore_errors=True)
    shutil.rmtree(out / CACHED_PARTS, ignore_errors=True)


@dataclasses.dataclass
class Position:
    """Where a run is: the epoch, the step within it, steps in all, and undecodable images skipped so far."""

    epoch: int = 0
    step_in_epoch: int = 0
    global_step: int = 0
    skipped_images: int = 0


def save_checkpoint(
    path: Path,
    ae: nn.Module,
    opt: torch.optim.Optimizer,
    sched: torch.optim.lr_scheduler.LRScheduler,
    position: Position,
    config: TrainConfig,
) -> None:
    """The network, optimiser, schedule, position and both generators' states: all an exact resume needs."""
    state = {
        "model": ae.state_dict(),
        "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict(),
        "epoch": position.epoch,
        "step_in_epoch": position.step_in_epoch,
        "global_step": position.global_step,
        "skipped_images": position.skipped_images,
        "rng_torch": torch.get_rng_state(),
        "rng_numpy": [v.tolist() if isinstance(v, np.ndarray) else v for v in np.random.get_state()],
        "config": dataclasses.asdict(config),
    }
    write_atomic(path, partial(torch.save, state))


def load_checkpoint(path: Path, device: torch.device) -> dict[str, Any]:
    """The checkpoint at ``path``; a truncated or foreign file is a ValueError naming it."""
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as err:  # torch raises several types for truncated zips and foreign pickles
        raise ValueError(f"{path} is not a readable recondefense checkpoint ({type(err).__name__}: {err})") from err
    keys = {"model", "optimizer", "scheduler", "epoch", "step_in_epoch", "global_step", "config"}
    if not isinstance(state, dict) or not keys <= set(state):
        raise ValueError(f"{path} is not a recondefense checkpoint (missing {sorted(keys - set(state or {}))})")
    return state


def resume_checkpoint(
    path: Path,
    device: torch.device,
    config: TrainConfig,
    ae: nn.Module,
    opt: torch.optim.Optimizer,
    sched: torch.optim.lr_scheduler.LRScheduler,
) -> tuple[Position, dict[str, tuple]]:
    """Restore the checkpoint at ``path`` into ``ae``, ``opt``, ``sched`` and the generators: its position, and
    the settings ``config`` changes (only :data:`_RESUMABLE_CHANGES` may differ)."""
    state = load_checkpoint(path, device)
    changed = changed_fields(state["config"], config)
    refused = {k: v for k, v in changed.items() if k not in _RESUMABLE_CHANGES}
    if refused:
        raise ValueError(
            "--resume with other settings than the checkpoint's: "
            + ", ".join(f"--{k.replace('_', '-')} {new!r} (checkpoint: {old!r})" for k, (old, new) in refused.items())
            + "; start a new --out, or resume with the checkpoint's settings"
        )
    ae.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["scheduler"])
    position = Position(state["epoch"], state["step_in_epoch"], state["global_step"], state["skipped_images"])
    torch.set_rng_state(state["rng_torch"])
    np.random.set_state(tuple(state["rng_numpy"]))  # type: ignore[arg-type]
    return position, changed


def trim_metrics(path: Path, global_step: int, epoch: int) -> None:
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
    write_atomic(path, "".join(line + "\n" for line in kept).encode())


class MetricsLog:
    """``metrics.jsonl``: one JSON record a line, flushed at once; ``path`` None (ranks other than 0) logs nothing."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.file = open(path, "a") if path is not None else None

    def __call__(self, record: dict[str, Any]) -> None:
        if self.file is not None:
            self.file.write(json.dumps(record) + "\n")
            self.file.flush()

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None


class StopRequest:
    """Turns SIGINT/SIGTERM into a flag the loop checks after each step."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopRequest:
        if hasattr(signal, "SIGTERM") and threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self.signal = signum

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
