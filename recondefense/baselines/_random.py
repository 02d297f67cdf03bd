"""Seeding shared by the randomized baselines (pixel deflection, random resize and padding)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import torch

from ..transform import PixelDefense

__all__ = ["RandomizedDefense"]


class RandomizedDefense(PixelDefense):
    """A :class:`PixelDefense` whose randomness comes from one ``torch.Generator`` for reproducibility, or from one
    generator per image within :meth:`per_image` (the rule of :mod:`recondefense.seeding`).

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
        self._image_generators: list[torch.Generator] | None = None
        if seed is not None:
            self.reseed(seed)

    def reseed(self, seed: int) -> None:
        """Restart the sequence of random draws from ``seed`` (creates a CPU generator if none)."""
        if self.generator is None:
            self.generator = torch.Generator()
        self.generator.manual_seed(int(seed))
        self.seed = int(seed)

    @contextlib.contextmanager
    def per_image(self, seeds: Sequence[int]) -> Iterator[None]:
        """Within the block, each image draws from its own generator, so its output does not depend on the batch.

        A call on ``len(seeds)`` images draws image ``i``'s numbers from a generator seeded with ``seeds[i]``, which
        advances call after call (each EOT pass and PGD step draws afresh). With one seed, every call draws from its
        generator (e.g. a batch of noisy copies of one image). A call on another number of images draws from the
        defense's own generator. Generators are created on the defense's generator's device (CPU by default).

        Raises:
            ValueError: no seeds.
        """
        if len(seeds) == 0:
            raise ValueError("per_image needs one seed per image, got none")
        device = self._rng_device
        generators = [torch.Generator(device=device).manual_seed(int(s)) for s in seeds]
        previous, self._image_generators = self._image_generators, generators
        try:
            yield
        finally:
            self._image_generators = previous

    @property
    def _rng_device(self) -> torch.device:
        return torch.device("cpu") if self.generator is None else self.generator.device

    def _rand(self, *shape: int) -> torch.Tensor:
        """Uniform [0, 1) float64 samples ``(N, ...)`` drawn on the generator's device; within :meth:`per_image`,
        row ``i`` from image ``i``'s generator."""
        generators = getattr(self, "_image_generators", None)
        options = {"device": self._rng_device, "dtype": torch.float64}
        if generators is not None and len(generators) == 1:
            return torch.rand(*shape, generator=generators[0], **options)
        if generators is not None and shape and len(generators) == shape[0]:
            return torch.stack([torch.rand(*shape[1:], generator=g, **options) for g in generators])
        return torch.rand(*shape, generator=self.generator, **options)
