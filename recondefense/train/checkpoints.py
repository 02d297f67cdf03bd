"""A run's files in ``--out``: the checks before a run starts, atomic checkpoints and exact resume,
``metrics.jsonl`` (trimmed back to the checkpoint on resume) and SIGINT/SIGTERM as a stop request.

A checkpoint is one safetensors file, ``checkpoint.safetensors``, and no pickle: every tensor of the training state
(network, optimizer moments, the torch generator) under a flattened key (``model.encoder.0.weight``,
``optimizer.state.3.exp_avg``), and the rest (schedule, position, numpy generator, the run's config) as JSON in the
file's metadata, with each tensor's place in it marked ``{"tensor": key}`` (:func:`pack_state`, :func:`unpack_state`).
Runs written by older versions (``checkpoint.pt``, read with ``torch.load(weights_only=True)``) still resume; their
next checkpoint replaces the file."""

from __future__ import annotations

import dataclasses
import json
import shutil
import signal
import threading
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save as safetensors_bytes
from torch import nn

from ..defense import ReconstructiveDefense
from ..files import write_atomic
from .architecture import purifier_config
from .config import TrainConfig, changed_fields, config_to_command
from .triplets import CACHED_CLEAN, CACHED_LABELS, CACHED_PARTS, CACHED_TRIPLETS

CHECKPOINT = "checkpoint.safetensors"
LEGACY_CHECKPOINT = "checkpoint.pt"  # written by earlier runs: read on resume, replaced by the next checkpoint
_FORMAT = "recondefense-training-checkpoint"
METRICS = "metrics.jsonl"

#: Settings a resumed run may change; the change is recorded in metrics.jsonl.
_RESUMABLE_CHANGES = {"epochs", "stop_after_steps", "max_minutes", "cpu_amp"}


def check_out(out: Path, config: TrainConfig) -> None:
    """Check ``out`` before anything is read or deleted: resumable, free (or ``overwrite``), and writable.

    A folder with neither a checkpoint nor final weights (a run that failed before its first checkpoint left
    only ``metrics.jsonl``) is free: a new run replaces its records."""
    used = out.is_dir() and any((out / n).exists() for n in (CHECKPOINT, LEGACY_CHECKPOINT, "final"))
    if config.resume:
        if find_checkpoint(out) is None:
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
    for name in (CHECKPOINT, LEGACY_CHECKPOINT, METRICS, CACHED_TRIPLETS, CACHED_CLEAN, CACHED_LABELS):
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


def find_checkpoint(out: Path) -> Path | None:
    """The checkpoint in run folder ``out`` (``checkpoint.safetensors``, else an older run's ``checkpoint.pt``)."""
    for name in (CHECKPOINT, LEGACY_CHECKPOINT):
        if (out / name).is_file():
            return out / name
    return None


def pack_state(state: Any, prefix: str = "") -> tuple[Any, dict[str, torch.Tensor]]:
    """``state`` (nested dicts, lists, tuples, tensors, JSON scalars) as a JSON-able structure and its tensors.

    Each tensor is replaced by ``{"tensor": key}``, its key the path to it joined by dots; a dict becomes
    ``{"dict": [[key, value], ...]}`` (its keys keep their type: optimizer states are keyed by int), a list or tuple
    ``{"list": [...]}``. Tensors are detached, moved to the CPU and copied (safetensors refuses shared storage)."""
    tensors: dict[str, torch.Tensor] = {}

    def walk(obj: Any, path: str) -> Any:
        if isinstance(obj, torch.Tensor):
            if path in tensors:
                raise ValueError(f"two tensors of the state flatten to the key {path!r}")
            tensors[path] = obj.detach().to("cpu", copy=True).contiguous()
            return {"tensor": path}
        if isinstance(obj, dict):
            if not all(isinstance(k, (str, int)) for k in obj):
                raise TypeError(f"{path or 'state'}: only str and int keys can be stored, not {list(obj)}")
            return {"dict": [[k, walk(v, f"{path}.{k}" if path else str(k))] for k, v in obj.items()]}
        if isinstance(obj, (list, tuple)):
            return {"list": [walk(v, f"{path}.{i}" if path else str(i)) for i, v in enumerate(obj)]}
        if isinstance(obj, np.ndarray):
            return walk(obj.tolist(), path)
        if isinstance(obj, np.generic):
            return obj.item()
        if obj is None or isinstance(obj, (bool, int, float, str)):
            return obj
        raise TypeError(f"{path or 'state'}: a {type(obj).__name__} cannot be stored in a checkpoint")

    return walk(state, prefix), tensors


def unpack_state(structure: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """The inverse of :func:`pack_state` (tuples come back as lists)."""
    if isinstance(structure, dict):
        if "tensor" in structure:
            return tensors[structure["tensor"]]
        if "dict" in structure:
            return {k: unpack_state(v, tensors) for k, v in structure["dict"]}
        return [unpack_state(v, tensors) for v in structure["list"]]
    return structure


def save_checkpoint(
    path: Path,
    ae: nn.Module,
    opt: torch.optim.Optimizer,
    sched: torch.optim.lr_scheduler.LRScheduler,
    position: Position,
    config: TrainConfig,
) -> None:
    """The network, optimiser, schedule, position and both generators' states (all an exact resume needs) as
    one safetensors file, written atomically."""
    state = {
        "model": ae.state_dict(),
        "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict(),
        "epoch": position.epoch,
        "step_in_epoch": position.step_in_epoch,
        "global_step": position.global_step,
        "skipped_images": position.skipped_images,
        "rng_torch": torch.get_rng_state(),
        "rng_numpy": list(np.random.get_state()),
        "config": dataclasses.asdict(config),
    }
    write_checkpoint_state(path, state)


def write_checkpoint_state(path: Path, state: dict[str, Any]) -> None:
    """Write a training state (as :func:`load_checkpoint` returns it) to ``path`` as a safetensors checkpoint,
    atomically. Converts an older run's checkpoint: ``write_checkpoint_state(new, load_checkpoint(old))``."""
    structure, tensors = pack_state(state)
    metadata = {"format": _FORMAT, "version": "1", "state": json.dumps(structure)}
    write_atomic(path, safetensors_bytes(tensors, metadata))


def load_checkpoint(path: Path, device: torch.device | str = "cpu") -> dict[str, Any]:
    """The checkpoint at ``path`` as the dict :func:`save_checkpoint` stored, its tensors on ``device``; a
    truncated or foreign file is a ValueError naming it. An older run's ``checkpoint.pt`` is read with
    ``torch.load(weights_only=True)``."""
    try:
        if path.suffix == ".pt":
            state = torch.load(path, map_location=device, weights_only=True)
        else:
            with safe_open(str(path), framework="pt", device=str(device)) as f:
                metadata = f.metadata() or {}
                if metadata.get("format") != _FORMAT:
                    raise ValueError(f"its metadata names no {_FORMAT} (format {metadata.get('format')!r})")
                tensors = {k: f.get_tensor(k) for k in f.keys()}
            state = unpack_state(json.loads(metadata["state"]), tensors)
    except Exception as err:  # truncated files and foreign formats raise several types
        raise ValueError(f"{path} is not a readable recondefense checkpoint ({type(err).__name__}: {err})") from err
    keys = {"model", "optimizer", "scheduler", "epoch", "step_in_epoch", "global_step", "config"}
    if not isinstance(state, dict) or not keys <= set(state):
        raise ValueError(f"{path} is not a recondefense checkpoint (missing {sorted(keys - set(state or {}))})")
    return state


def defense_from_checkpoint(path: Path) -> ReconstructiveDefense:
    """The network a run had at its checkpoint ``path``, as an untouched defense in eval mode: to measure a run
    before it ends, or to start another run from it (``--init-from RUN/checkpoint.safetensors``). Its meta holds
    only ``command``: the run's command and the step it had reached, for the card of weights composed from it.

    Raises:
        ValueError: ``path`` is no readable checkpoint, or its network fits no channel count of its config.
    """
    state = load_checkpoint(path)
    config = TrainConfig(**{k: v for k, v in state["config"].items() if k != "extra_meta"})
    shapes = {k: v.shape for k, v in state["model"].items()}
    command = f"{config_to_command(config)} (its checkpoint at step {state['global_step']})"
    for channels in (3, 1):  # the config does not record the image channels; the weights' shapes tell
        defense = ReconstructiveDefense.from_config(purifier_config(config, in_channels=channels), {"command": command})
        if {k: v.shape for k, v in defense.autoencoder.state_dict().items()} == shapes:
            defense.autoencoder.load_state_dict(state["model"])
            return defense.eval()
    raise ValueError(f"{path}: its network matches no {config.arch!r} purifier of 1 or 3 channels of its config")


def resume_checkpoint(
    path: Path,
    device: torch.device,
    config: TrainConfig,
    ae: nn.Module,
    opt: torch.optim.Optimizer,
    sched: torch.optim.lr_scheduler.LRScheduler,
) -> tuple[Position, dict[str, tuple]]:
    """Restore the checkpoint at ``path`` into ``ae``, ``opt``, ``sched`` and the generators: its position, and
    the settings ``config`` changes (only :data:`_RESUMABLE_CHANGES` may differ). The state is read on the CPU
    (the generator state must live there); ``load_state_dict`` moves the rest to the network's ``device``."""
    state = load_checkpoint(path, "cpu")
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
