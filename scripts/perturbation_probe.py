"""How much of a PGD perturbation must a purifier remove before the classifier's answer comes back?

    python scripts/perturbation_probe.py --limit 200

Attacks validation crops of the training photos (never the held-out ones) with the paper's PGD against the
classifier, then asks the classifier about partial oracle repairs of each attacked crop ``x + delta``:

- ``x + (1 - f) delta``: a purifier that removes the fraction ``f`` of the perturbation everywhere;
- ``x + low(delta)`` / ``x + delta - low(delta)``: one that removes only the perturbation's fine detail
  (above ``--cutoff``-pixel scale) or only its coarse part, ``low`` being an area down- and bilinear up-sampling;
- ``x + delta + noise``: Gaussian noise on top (the usual cheap randomised defence).

It prints one markdown table of agreement with the classifier's clean prediction (the held-out tables' metric).
The oracle knows ``delta``; no purifier does, so each row is an upper bound for a purifier of that kind.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import torch
import torch.nn.functional as F

from recondefense.attacks import PGD
from recondefense.classifiers import load_classifier
from recondefense.data import load_dataset


def low_pass(t: torch.Tensor, cutoff: int) -> torch.Tensor:
    """``t`` ``(N, C, H, W)`` seen at ``cutoff``-times coarser resolution, brought back to its size."""
    coarse = F.interpolate(t, scale_factor=1 / cutoff, mode="area")
    return F.interpolate(coarse, size=t.shape[-2:], mode="bilinear", align_corners=False)


def repairs(cutoff: int, seed: int) -> dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]]:
    """Row name -> ``(clean, delta) -> image`` fed to the classifier (clamped to [0, 1] by the caller)."""
    rows: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
        "attacked (nothing removed)": lambda x, d: x + d,
    }
    for fraction in (0.25, 0.5, 0.75, 0.9):
        rows[f"{fraction:.0%} of delta removed everywhere"] = lambda x, d, f=fraction: x + (1 - f) * d
    rows[f"fine detail of delta removed (kept: below 1/{cutoff} resolution)"] = lambda x, d: x + low_pass(d, cutoff)
    rows[f"coarse part of delta removed (kept: above 1/{cutoff} resolution)"] = lambda x, d: x + d - low_pass(d, cutoff)
    generator = torch.Generator().manual_seed(seed)
    for sigma in (0.01, 0.03):
        rows[f"Gaussian noise sigma {sigma} added"] = lambda x, d, s=sigma: (
            x + d + s * torch.randn(x.shape, generator=generator)
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--classifier", default="imagenet-efficientnet_lite0")
    parser.add_argument("--data", default="photos:2000", help="data spec; its val split is attacked")
    parser.add_argument("--limit", type=int, default=200, help="validation crops")
    parser.add_argument("--batch-size", type=int, default=25)
    parser.add_argument("--cutoff", type=int, default=4, help="scale of the low-pass split of delta, in pixels")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.limit < 1 or args.batch_size < 1 or args.cutoff < 2:
        parser.error("--limit and --batch-size must be positive, --cutoff at least 2")
    classifier = load_classifier(args.classifier).eval()
    val_set = load_dataset(args.data, "val", classifier=classifier)
    n = min(args.limit, len(val_set))
    attack = PGD(classifier)  # the paper's eps 0.01, 10 steps of 0.004, no random start
    rows = repairs(args.cutoff, args.seed)
    agree = dict.fromkeys(rows, 0)
    for start in range(0, n, args.batch_size):
        items = [val_set[i] for i in range(start, min(start + args.batch_size, n))]
        x = torch.stack([image for image, _ in items])
        with torch.no_grad():
            clean_prediction = classifier(x).argmax(1)
        delta = attack(x, clean_prediction) - x
        with torch.no_grad():
            for name, repair in rows.items():
                prediction = classifier(repair(x, delta).clamp(0, 1)).argmax(1)
                agree[name] += int((prediction == clean_prediction).sum())
    print(f"`{args.classifier}`, {n} validation crops of `{args.data}`, PGD eps 0.01 (10 x 0.004); oracle repairs")
    print("of the attacked crop x + delta, agreement with the clean prediction:\n")
    print("| Repair | Agreement |\n|---|---|")
    for name, count in agree.items():
        print(f"| {name} | {count / n:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
