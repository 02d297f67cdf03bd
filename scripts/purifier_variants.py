"""Test-time variants of a purifier, no training: does anything beat running it once on attacked images?

On the first ``--images`` validation object crops (as ``scripts/recovery_breakdown.py``: consensus labels of Lite0
and Lite2, never a test crop), clean and under each attack aimed at Lite0, one markdown row per variant of the
purifier ``P`` (the ``.strong`` AE of routed weights, else their adversarial AE, else the weights' own network) and
``S`` (``--second``, default: the small AE of the same routed weights):

- ``once``: ``P(x)``; ``twice``: ``P(P(x))``; ``blend 0.7``: ``x + 0.7 (P(x) - x)``;
- ``noise s`` / ``noise s x4``: ``P`` of ``x`` plus Gaussian noise of sigma ``s`` (one draw; the mean over 4);
- ``half resolution``: ``P`` of ``x`` downsampled by 2 (antialiased) and back;
- ``low from x, sigma s``: the Gaussian low-pass of ``x`` plus the high-pass of ``P(x)``;
- ``shift 1 px`` / ``shift 2 px``: ``P`` of ``x`` moved one / two pixels down and right (reflected at the edge), its
  output moved back;
- ``shifts kxk``: the mean of ``P`` over the image shifted by 0 to k-1 pixels down and right (reflected at the
  edges), each output shifted back (whether the strided AE's errors average out over shifts: they do not, its
  removal of a perturbation is bound to its pixel grid, docs/design.md);
- ``mean with S``: ``(P(x) + S(x)) / 2``.

    python scripts/purifier_variants.py [--weights NAME or FOLDER] [--images 96] [--attacks fgsm,pgd] [--only VARIANT ...]

About 5 minutes on 2 CPU cores for 96 crops before the shift variants were added (``shifts 4x4`` runs ``P``
16 times), most of it the attacks and the 4-draw variants.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

import torch
import torch.nn.functional as F
from recovery_breakdown import purifiers, validation_sets
from torch import nn
from torchvision.transforms.functional import gaussian_blur

from recondefense import ReconstructiveDefense
from recondefense.defense import DEFAULT_IMAGENET_WEIGHTS


def variants(p: nn.Module, s: nn.Module | None, seed: int = 0) -> dict[str, Callable[[torch.Tensor], torch.Tensor]]:
    """The variants by name, each ``(N, C, H, W)`` in [0, 1] -> the same (the noise seeded by ``seed``)."""
    generator = torch.Generator().manual_seed(seed)

    def noisy(sigma: float, draws: int) -> Callable[[torch.Tensor], torch.Tensor]:
        def run(x: torch.Tensor) -> torch.Tensor:
            noise = [sigma * torch.randn(x.shape, generator=generator) for _ in range(draws)]
            return torch.stack([p((x + n).clamp(0, 1)) for n in noise]).mean(0)

        return run

    def low_from_x(sigma: float) -> Callable[[torch.Tensor], torch.Tensor]:
        size = int(4 * sigma) | 1

        def run(x: torch.Tensor) -> torch.Tensor:
            out = p(x)
            return (gaussian_blur(x, size, sigma) + out - gaussian_blur(out, size, sigma)).clamp(0, 1)

        return run

    def through_shift(x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
        """``P`` of ``x`` moved ``dy`` / ``dx`` pixels down / right (reflected at the edges), its output moved back."""
        size, pad = x.shape[-2:], max(dy, dx)
        window = F.pad(x, (pad,) * 4, mode="reflect")[..., pad - dy : pad - dy + size[0], pad - dx : pad - dx + size[1]]
        out = F.pad(p(window), (pad,) * 4, mode="reflect")
        return out[..., pad + dy : pad + dy + size[0], pad + dx : pad + dx + size[1]]

    def shifted(k: int) -> Callable[[torch.Tensor], torch.Tensor]:
        return lambda x: torch.stack([through_shift(x, dy, dx) for dy in range(k) for dx in range(k)]).mean(0)

    def half(x: torch.Tensor) -> torch.Tensor:
        small = F.interpolate(x, scale_factor=0.5, mode="bilinear", antialias=True)
        return p(F.interpolate(small, size=x.shape[-2:], mode="bilinear"))

    table = {
        "once": p,
        "twice": lambda x: p(p(x)),
        "blend 0.7": lambda x: x + 0.7 * (p(x) - x),
        "noise 0.02": noisy(0.02, 1),
        "noise 0.04": noisy(0.04, 1),
        "noise 0.02 x4": noisy(0.02, 4),
        "noise 0.04 x4": noisy(0.04, 4),
        "half resolution": half,
        **{f"low from x, sigma {sigma:g}": low_from_x(sigma) for sigma in (1.0, 2.0, 4.0, 8.0)},
        "shift 1 px": lambda x: through_shift(x, 1, 1),
        "shift 2 px": lambda x: through_shift(x, 2, 2),
        "shifts 2x2": shifted(2),
        "shifts 4x4": shifted(4),
    }
    if s is not None:
        table["mean with S"] = lambda x: 0.5 * (p(x) + s(x))
    return table


@torch.no_grad()
def accuracy(
    fn: Callable[[torch.Tensor], torch.Tensor],
    classifier: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    batch_size: int = 16,
) -> float:
    """The classifier's accuracy on ``fn`` of ``images`` ``(N, C, H, W)`` against ``labels`` ``(N,)``, in [0, 1]."""
    out = torch.cat([fn(images[i : i + batch_size]) for i in range(0, len(images), batch_size)])
    return (classifier(out).argmax(1) == labels).float().mean().item()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", default=DEFAULT_IMAGENET_WEIGHTS, help="name or folder whose purifier P is")
    parser.add_argument("--second", default=None, help="weights of S (default: the small AE of --weights, if any)")
    parser.add_argument("--images", type=int, default=96)
    parser.add_argument("--attacks", default="fgsm,pgd", help="comma-separated, the tier's parameters")
    parser.add_argument(
        "--only", action="append", metavar="VARIANT", help="a variant to run (repeatable; default: every variant)"
    )
    args = parser.parse_args(argv)
    p, s = purifiers(ReconstructiveDefense.from_pretrained(args.weights).autoencoder.eval())
    if args.second is not None:
        s = ReconstructiveDefense.from_pretrained(args.second).autoencoder.eval()
    table = variants(p, s)
    chosen = args.only or list(table)
    unknown = sorted(set(chosen) - set(table))
    if unknown:  # before the attacks, which take minutes
        parser.error(f"unknown variants {unknown}; known: {', '.join(table)}")
    classifier, y, sets = validation_sets(args.images, args.attacks)
    print(f"P: {args.weights}, {len(y)} validation object crops, target Lite0\n")
    print("| variant | " + " | ".join(sets) + " |\n|---|" + "---|" * len(sets))
    for name in chosen:
        fn = table[name]
        cells = (f"{accuracy(fn, classifier, images, y):.3f}" for images in sets.values())
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
