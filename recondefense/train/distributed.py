"""This process's place in a ``torchrun`` job (rank, world size, device) and the end-of-run weight check."""

from __future__ import annotations

import os

import torch
import torch.distributed as dist
from torch import nn

from .config import TrainConfig


def torchrun_ranks() -> tuple[int, int, int]:
    """``(rank, world size, local rank)`` from torchrun's environment; ``(0, 1, 0)`` outside torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0"))


def train_device(config: TrainConfig, local_rank: int) -> torch.device:
    """The device of this rank: ``config.device``, ``auto`` or a bare ``cuda`` resolved to the local rank's GPU."""
    if config.device == "auto":
        return torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    device = torch.device(config.device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", local_rank)
    return device


def ranks_agree(ae: nn.Module, world: int) -> bool:
    """Whether every rank holds the same weights (a checksum gathered from all ranks)."""
    if world == 1:
        return True
    checksum = torch.stack([p.detach().double().sum() for p in ae.parameters()]).sum().reshape(1).cpu()
    gathered = [torch.zeros_like(checksum) for _ in range(world)]
    dist.all_gather(gathered, checksum)
    return all(torch.equal(g, gathered[0]) for g in gathered)
