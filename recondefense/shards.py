"""Sharded runs of ``recondefense evaluate`` and ``recondefense certify``: in one process, or in several under
``torchrun`` (``torchrun --nproc_per_node N -m recondefense.evaluate ...``, across nodes with the usual rendezvous
flags).

The test images are cut into shards: contiguous blocks of ``shard_size`` indices (the last one shorter), the same
whatever the number of processes. Rank ``r`` of ``W`` takes shards ``r, r + W, ...`` of those to compute: each image
is computed once, none is padded or repeated. Each finished shard's per-image results are written at once, whole or
not at all (:func:`~recondefense.files.write_atomic`), to ``<work>/<fingerprint>/shard-<k>.json``; the fingerprint
hashes every setting that changes the results (not the number of processes). Rank 0 then gathers every shard (from
the other ranks over ``torch.distributed``, and from its folder those an earlier run finished) and the caller merges
them in image order into exactly the rows one process writes. A killed rank or job keeps every shard it wrote;
``resume`` computes only the missing ones, and never takes shards of other settings (another fingerprint). Across
nodes, put the work folder on a filesystem they share (rank 0 reads the shards an earlier run left there).

Process groups: gloo on the CPU, NCCL on GPUs; ``--device cuda`` or ``auto`` runs each rank on ``cuda:<local rank>``.
Random draws are seeded per image (:mod:`recondefense.seeding`), so the rows do not depend on the number of ranks.

Test hook: ``RECONDEFENSE_KILL_AFTER_SHARDS=k`` makes each process exit at once, as if killed, after writing its
``k``-th shard.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .files import write_atomic

__all__ = [
    "KILL_AFTER_SHARDS",
    "Place",
    "default_shard_size",
    "fingerprint",
    "place",
    "process_group",
    "rank_device",
    "remove_work",
    "run_shards",
    "shard_ranges",
]

logger = logging.getLogger(__name__)

#: The environment variable of the test hook (see the module's docstring).
KILL_AFTER_SHARDS = "RECONDEFENSE_KILL_AFTER_SHARDS"
#: How long a rank waits for the others (the slowest rank's remaining shards): days, not torch's default minutes.
_TIMEOUT = datetime.timedelta(days=7)


@dataclass(frozen=True)
class Place:
    """This process's place in a ``torchrun`` job: ``rank`` of ``world`` processes, ``local_rank`` on its node."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Whether this is rank 0, which merges the shards and writes the results."""
        return self.rank == 0


def place() -> Place:
    """This process's :class:`Place` from torchrun's environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``);
    ``Place(0, 1, 0)`` outside torchrun."""
    env = os.environ
    return Place(int(env.get("RANK", "0")), int(env.get("WORLD_SIZE", "1")), int(env.get("LOCAL_RANK", "0")))


def rank_device(name: str, where: Place) -> torch.device:
    """The device of ``--device name`` for this rank: ``"auto"`` is ``cuda:<local rank>`` when CUDA is available
    (else the CPU), ``"cuda"`` is ``cuda:<local rank>``; others (``"cpu"``, ``"cuda:N"``) as given."""
    if name == "auto":
        return torch.device(f"cuda:{where.local_rank}" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", where.local_rank)
    return device


@contextlib.contextmanager
def process_group(where: Place, device: torch.device) -> Iterator[None]:
    """The default process group of a ``torchrun`` job for the block (nothing outside torchrun): NCCL when
    ``device`` is a GPU (made the current device), else gloo."""
    if where.world == 1:
        yield
        return
    import torch.distributed as dist

    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=_TIMEOUT)
    try:
        yield
    finally:
        dist.destroy_process_group()


def default_shard_size(batch_size: int, at_least: int = 250) -> int:
    """The smallest multiple of ``batch_size`` that is at least ``at_least`` images: shards of whole batches."""
    return -(-at_least // batch_size) * batch_size


def shard_ranges(total: int, shard_size: int) -> list[range]:
    """The shards of images ``0 .. total - 1``: contiguous ranges of ``shard_size`` indices, the last one shorter."""
    if shard_size < 1:
        raise ValueError(f"shard_size must be a positive number of images, got {shard_size}")
    return [range(start, min(start + shard_size, total)) for start in range(0, total, shard_size)]


def fingerprint(settings: dict[str, Any]) -> str:
    """16 hex digits of the SHA-256 of ``settings`` (JSON, keys sorted): the name of one configuration's shards."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def _shard_file(work: Path, index: int) -> Path:
    return work / f"shard-{index:06d}.json"


def _shard_bytes(key: str, shard: range, results: Any) -> bytes:
    return json.dumps({"fingerprint": key, "start": shard.start, "stop": shard.stop, "results": results}).encode()


def _finished(work: Path, key: str, ranges: list[range]) -> dict[int, Any]:
    """The results of the shards of ``ranges`` whose files in ``work`` are whole and of this fingerprint; others
    are left out (and computed again)."""
    done = {}
    for index, shard in enumerate(ranges):
        path = _shard_file(work, index)
        if not path.is_file():
            continue
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
            if (saved["fingerprint"], saved["start"], saved["stop"]) != (key, shard.start, shard.stop):
                raise ValueError("another configuration or range")
            done[index] = saved["results"]
        except (OSError, ValueError, KeyError, TypeError) as err:
            logger.warning("%s: not a finished shard of this run (%s): computing it again", path, err)
    return done


def run_shards(
    compute: Callable[[range], Any],
    total: int,
    shard_size: int,
    *,
    settings: dict[str, Any],
    work: Path | None,
    resume: bool = False,
    where: Place | None = None,
) -> list[Any] | None:
    """Run ``compute`` on this rank's shards of images ``0 .. total - 1`` and gather every shard's results on rank 0.

    Args:
        compute: ``range of image indices -> JSON-able results`` (one shard's per-image results).
        settings: everything that changes the results (JSON-able); its :func:`fingerprint` names the shards' folder.
        work: the folder of the shards' files (created), or None: nothing written, nothing to resume.
        resume: take the shards of ``work`` an earlier run of the same settings finished; compute only the others.
        where: this process's place (default: :func:`place`); more than one process needs the default process
            group (:func:`process_group`).

    Returns:
        On rank 0, the results of every shard in image order; None on the other ranks.

    Raises:
        ValueError: ``resume`` without ``work``, or more than one process without ``work``.
        RuntimeError: a shard's results never reached rank 0.
    """
    where = where or place()
    if work is None and (resume or where.world > 1):
        raise ValueError("resuming or running in several processes needs a work folder for the finished shards")
    ranges = shard_ranges(total, shard_size)
    key = fingerprint(settings)
    folder = None if work is None else work / key
    done: dict[int, Any] = {}
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        if where.main:
            write_atomic(folder / "settings.json", json.dumps(settings, indent=1, sort_keys=True).encode())
            if resume:
                done = _finished(folder, key, ranges)
                logger.info("resume: %d of %d shards finished in %s", len(done), len(ranges), folder)
    finished = _broadcast(sorted(done), where)
    todo = [k for k in range(len(ranges)) if k not in set(finished)]
    kill_after = int(os.environ.get(KILL_AFTER_SHARDS, "0") or 0)
    mine: dict[int, Any] = {}
    for count, index in enumerate(todo[where.rank :: where.world], 1):
        shard = ranges[index]
        start = time.perf_counter()
        mine[index] = compute(shard)
        if folder is not None:
            write_atomic(_shard_file(folder, index), _shard_bytes(key, shard, mine[index]))
        logger.info(
            "shard %d/%d (images %d-%d) done on rank %d in %.1f s",
            index + 1,
            len(ranges),
            shard.start,
            shard.stop - 1,
            where.rank,
            time.perf_counter() - start,
        )
        if kill_after and count >= kill_after:
            os._exit(137)  # the test hook: gone at once, as under SIGKILL
    gathered = _gather(mine, where)
    if gathered is None:
        return None
    for part in gathered:
        for index, results in part.items():
            if folder is not None and not _shard_file(folder, index).is_file():  # another node's disk: keep a copy
                write_atomic(_shard_file(folder, index), _shard_bytes(key, ranges[index], results))
            done[index] = results
    lost = [k for k in range(len(ranges)) if k not in done]
    if lost:
        raise RuntimeError(f"shards {lost} of {len(ranges)} never reached rank 0")
    return [done[k] for k in range(len(ranges))]


def _broadcast(value: Any, where: Place) -> Any:
    """Rank 0's ``value`` on every rank."""
    if where.world == 1:
        return value
    import torch.distributed as dist

    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def _gather(value: Any, where: Place) -> list[Any] | None:
    """Every rank's ``value``, in rank order, on rank 0; None on the others."""
    if where.world == 1:
        return [value]
    import torch.distributed as dist

    gathered: list[Any] | None = [None] * where.world if where.main else None
    dist.gather_object(value, gathered, dst=0)
    return gathered


def remove_work(work: Path | None, settings: dict[str, Any]) -> None:
    """Remove the shards of ``settings`` from ``work`` once the merged results are safely written, and ``work``
    itself when nothing else is left in it (shards of other settings are kept)."""
    if work is None:
        return
    folder = work / fingerprint(settings)
    if folder.is_dir():
        shutil.rmtree(folder)
    with contextlib.suppress(OSError):  # not empty, or gone
        work.rmdir()
