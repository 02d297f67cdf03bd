"""Tiny deterministic classifiers importable as ``tiny_models:<factory>`` (training tests, torchrun)."""

from __future__ import annotations

import os
import signal

import torch
from torch import nn


class TinyClassifier(nn.Module):
    """(N, 3, H, W) in [0, 1] -> (N, classes) logits; same weights on every construction."""

    def __init__(self, classes: int = 2) -> None:
        super().__init__()
        generator_state = torch.random.get_rng_state()
        torch.manual_seed(1234)
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.fc = nn.Linear(8, classes)
        torch.random.set_rng_state(generator_state)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(x).relu().mean((2, 3)))


def tiny_classifier() -> nn.Module:
    return TinyClassifier(2)


def three_class_classifier() -> nn.Module:
    return TinyClassifier(3)


class _NaNAfter(TinyClassifier):
    calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        type(self).calls += 1
        out = super().forward(x)
        return out * float("nan") if type(self).calls > 40 else out


def nan_classifier() -> nn.Module:
    _NaNAfter.calls = 0
    return _NaNAfter(2)


class _SignalAfter(TinyClassifier):
    calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        type(self).calls += 1
        if type(self).calls == 30:
            os.kill(os.getpid(), signal.SIGTERM)
        return super().forward(x)


def sigterm_classifier() -> nn.Module:
    _SignalAfter.calls = 0
    return _SignalAfter(2)


class _OtherTiny(TinyClassifier):
    """A second tiny classifier with other weights (the multi-classifier training test)."""

    def __init__(self) -> None:
        super().__init__(2)
        with torch.no_grad():
            self.fc.weight.mul_(-1)


def other_tiny_classifier() -> nn.Module:
    return _OtherTiny()
