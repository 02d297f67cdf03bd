"""Seeding shared by the randomized baselines (pixel deflection, random resize and padding)."""

from __future__ import annotations

import torch

from ..transform import PixelDefense

__all__ = ["RandomizedDefense"]


class RandomizedDefense(PixelDefense):
    """A :class:`PixelDefense` whose randomness comes from one ``torch.Generator`` for reproducibility.

    Args:
        seed: seed of a private CPU generator created here (a given seed gives the same sequence of
            outputs, call after call), or None.
        generator: a generator to draw from (its device is where random numbers are drawn), or None.
            With neither, the global torch RNG is used (``torch.manual_seed`` controls it).
    """

    randomized = True

    def __init__(self, seed: int | None = None, generator: torch.Generator | None = None) -> None:
        super().__init__()
        if seed is not None and generator is not None:
            raise ValueError("pass seed or generator, not both: seed creates a private generator")
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"expected generator as a torch.Generator, got {type(generator).__name__}")
        self.seed = seed
        self.generator = generator
        if seed is not None:
            self.reseed(seed)

    def reseed(self, seed: int) -> None:
        """Restart the sequence of random draws from ``seed`` (creates a CPU generator if none)."""
        if self.generator is None:
            self.generator = torch.Generator()
        self.generator.manual_seed(int(seed))
        self.seed = int(seed)

    @property
    def _rng_device(self) -> torch.device:
        return torch.device("cpu") if self.generator is None else self.generator.device

    def _rand(self, *shape: int) -> torch.Tensor:
        """Uniform [0, 1) float64 samples drawn on the generator's device."""
        return torch.rand(*shape, generator=self.generator, device=self._rng_device, dtype=torch.float64)
