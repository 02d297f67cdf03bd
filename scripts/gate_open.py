"""How often a gated defense's gate opens on clean images it never trained on: its false positives.

The gate of a gated purifier (``arch="gated"``) decides per image whether the purifier runs; on clean traffic it
should stay shut (goal of issue 24: open on at most 2% of clean crops). This script counts the images whose gate
value exceeds 0.5 on each set of clean images, with the Wilson 95% interval and the mean gate value:

- ``imagenet-objects``: all 690 fixed test crops of the object-photo tier (before the consensus labelling drops any);
- ``imagenet-heldout``: the 128 fixed crops of the held-out sample photos (scikit-image, scikit-learn, matplotlib);
- ``paintings``: the 40 crops of the GCompris Van Gogh paintings (never trained on, also not as negatives);
- the object crops again as natural look-alikes of a perturbation at the strongest setting training drew
  (``recondefense.train.negatives``): JPEG quality 30, sensor noise sigma 0.012 (and 0.004, 0.008 below it), unsharp
  mask 1.5; and past it,
  JPEG quality 15 and noise sigma 0.02 (harsher than any look-alike trained on).

    python scripts/gate_open.py [--weights NAME] [--json results/imagenet/gate-open.json] [--corruptions brightness]

``--corruptions``: also the object crops under these ImageNet-C corruptions at severities 1-5 (the gate should stay
shut where no route undoes the corruption, e.g. brightness; it opens on noise by design).

A defense that stretches washed-out images first (``contrast_floor`` > 0) also gets, per set, how many images
it stretches (``stretched``: gain above 1, :func:`~recondefense.routing.contrast_gain`), and one that deblurs smooth
images first (``deblur_sharpness_range``) how many it deblurs (``deblurred``: a share above 0,
:func:`~recondefense.routing.deblur_share`), one that removes salt-and-pepper dots first (``impulse_range``) how many
it cleans (``dots_removed``: :func:`~recondefense.routing.impulse_share` above 0), one with a fog step
(``fog_range``) how many it dehazes (``dehazed``: :meth:`~recondefense.routing.RouteMixture.dehaze_share` at least 0.01), one
with a brightness step (``brightness_range``) how many it lowers to black (``lowered``:
:meth:`~recondefense.routing.RouteMixture.lowering_share` at least 0.01), one with a snow step (``snow_range``) how
many it reads as snowy (``snowy``: :meth:`~recondefense.routing.RouteMixture.snow_share` at least 0.01, their routes
shrunk): changes to clean images the
gate does not decide. The gate is read
where the defense reads it, after those steps. No attack is run: seconds on a CPU. The share of attacked images a gate opens on is in
the tier's rows (``gate_open_pgd``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import torch

from recondefense import ReconstructiveDefense
from recondefense.baselines import JPEG
from recondefense.corruptions import CORRUPTIONS, corrupt, corruption_names
from recondefense.data import heldout_photos, object_test_crops, painting_crops
from recondefense.defense import DEFAULT_IMAGENET_WEIGHTS
from recondefense.evaluate.tiers import HELDOUT_GRID
from recondefense.levels import contrast_gain, deblur_share, impulse_share
from recondefense.metrics import wilson_interval
from recondefense.train.negatives import unsharp


def _noise(sigma: float) -> Callable[[torch.Tensor], torch.Tensor]:
    def add(images: torch.Tensor) -> torch.Tensor:
        generator = torch.Generator().manual_seed(0)
        return (images + sigma * torch.randn(images.shape, generator=generator)).clamp(0, 1)

    return add


#: The look-alikes measured on the object crops: name -> transform of an ``(N, 3, H, W)`` batch in [0, 1].
VARIANTS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "objects, JPEG q30": lambda x: JPEG(quality=30).purify(x),
    "objects, noise sigma 0.004": _noise(0.004),
    "objects, noise sigma 0.008": _noise(0.008),
    "objects, noise sigma 0.012": _noise(0.012),
    "objects, unsharp 1.5": lambda x: unsharp(x, 1.5).clamp(0, 1),
    "objects, JPEG q15": lambda x: JPEG(quality=15).purify(x),
    "objects, noise sigma 0.02": _noise(0.02),
}


def _corrupted(name: str, severity: int) -> Callable[[torch.Tensor], torch.Tensor]:
    def apply(images: torch.Tensor) -> torch.Tensor:
        return corrupt(images, name, severity, generator=torch.Generator().manual_seed(0))

    return apply


def stack(dataset) -> torch.Tensor:
    """All images of a dataset of ``(image, label)`` items as one ``(N, C, H, W)`` float tensor in [0, 1]."""
    return torch.stack([dataset[i][0] for i in range(len(dataset))]) if len(dataset) else torch.zeros(0, 3, 224, 224)


def batched(per_image: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor, batch: int = 32) -> torch.Tensor:
    """``per_image`` (a batch ``(n, C, H, W)`` -> ``(n,)``) over ``images`` a batch at a time, concatenated."""
    with torch.inference_mode():
        return torch.cat([per_image(images[i : i + batch]) for i in range(0, len(images), batch)])


def gate_values(defense: ReconstructiveDefense, images: torch.Tensor, batch: int = 32) -> torch.Tensor:
    """The gate per image, ``(N,)`` in (0, 1)."""
    return batched(defense.gate, images, batch)


def row(name: str, gates: torch.Tensor, changed: dict[str, int] | None = None) -> dict:
    """The counts of one set; ``changed``: how many images each step before the gate changes (``stretched``,
    ``deblurred``, ``dots_removed``, ``dehazed``)."""
    opened, n = int((gates > 0.5).sum()), len(gates)
    low, high = wilson_interval(opened, n) if n else (0.0, 1.0)
    return {"set": name, "n": n, "opened": opened, "open": opened / max(n, 1), "wilson95": [low, high],
            "mean_gate": float(gates.mean()) if n else None} | (changed or {})  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", default=DEFAULT_IMAGENET_WEIGHTS, help="gated defense (name, hub id or folder)")
    parser.add_argument("--json", type=Path, help="write the rows here")
    parser.add_argument("--label", help="the name its column shows (default: --weights)")
    parser.add_argument("--corruptions", default="", help="comma-separated ImageNet-C corruptions, severities 1-5")
    args = parser.parse_args(argv)
    try:
        corruptions = corruption_names(args.corruptions, CORRUPTIONS)
    except ValueError as err:
        parser.error(f"--corruptions: {err}")
    defense = ReconstructiveDefense.from_pretrained(args.weights).eval()
    if defense.gate(torch.zeros(1, 3, 32, 32)) is None:
        parser.error(f"{args.weights} has no gate (arch {defense.arch!r})")
    objects = stack(object_test_crops())
    sets: dict[str, Callable[[], torch.Tensor]] = {  # made one at a time: each set of object crops is ~0.4 GB
        "imagenet-objects (all test crops)": lambda: objects,
        "imagenet-heldout (128 crops)": lambda: stack(heldout_photos(grid=HELDOUT_GRID)),
        "paintings (GCompris Van Gogh)": lambda: stack(painting_crops()),
    }
    variants = VARIANTS | {
        f"objects, {name} {severity}": _corrupted(name, severity) for name in corruptions for severity in range(1, 6)
    }
    sets |= {name: (lambda transform=transform: transform(objects)) for name, transform in variants.items()}
    config = defense.purifier_config

    def changed(images: torch.Tensor) -> dict[str, int]:  # the images each step before the gate changes
        counts = {}
        if config.contrast_floor:
            counts["stretched"] = int((contrast_gain(images, config.contrast_floor, config.contrast_target) > 1).sum())
        if config.arch == "routed" and config.impulse_range is not None:
            share = impulse_share(images, config.impulse_range, config.impulse_noise_range)
            counts["dots_removed"] = int((share > 0).sum())
        if config.arch == "routed" and config.deblur_sharpness_range is not None:
            share = deblur_share(images, config.deblur_sharpness_range, config.deblur_ratio_range)
            counts["deblurred"] = int((share > 0).sum())
        if config.arch == "routed" and config.fog_range is not None:
            counts["dehazed"] = int((batched(defense.autoencoder.dehaze_share, images) >= 0.01).sum())
        if config.arch == "routed" and config.brightness_range is not None:
            counts["lowered"] = int((batched(defense.autoencoder.lowering_share, images) >= 0.01).sum())
        if config.arch == "routed" and config.snow_range is not None:
            counts["snowy"] = int((batched(defense.autoencoder.snow_share, images) >= 0.01).sum())
        return counts

    rows = []
    for name, make in sets.items():
        images = make()
        rows.append(row(name, gate_values(defense, images), changed(images)))
    print(f"gate open (value > 0.5) on clean images, {args.weights}:")
    for r in rows:
        print(f"  {r['set']:<52} {r['opened']:>4}/{r['n']:<4} = {r['open']:.3f} "
              f"[{r['wilson95'][0]:.3f}, {r['wilson95'][1]:.3f}]  mean gate {r['mean_gate']:.3f}"
              + (f", contrast stretched on {r['stretched']}" if "stretched" in r else "")
              + (f", deblurred {r['deblurred']}" if "deblurred" in r else "")
              + (f", dots removed {r['dots_removed']}" if "dots_removed" in r else "")
              + (f", dehazed {r['dehazed']}" if "dehazed" in r else "")
              + (f", lowered {r['lowered']}" if "lowered" in r else "")
              + (f", read as snow {r['snowy']}" if "snowy" in r else ""))  # fmt: skip
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        command = "python scripts/gate_open.py " + " ".join(sys.argv[1:] if argv is None else argv)
        args.json.write_text(
            json.dumps({"weights": args.label or args.weights, "command": command, "rows": rows}, indent=1) + "\n"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
