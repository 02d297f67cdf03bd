"""How sharp the validation object crops read, clean and under each blur: where a deblurring route's range goes.

:func:`recondefense.levels.sharpness` (fine detail for the contrast) and :func:`recondefense.levels.blur_ratio` (how
much sharper the image reads at half resolution: about 4 where no pixel-scale detail is left) of the first
``--limit`` crops of ``imagenet-objects-val``, clean and corrupted by each of ``--corruptions`` at severities 1-5:
their 5th, 50th and 95th percentiles, and the share of crops with a sharpness at or below each of ``--below`` (for
clean crops: the share a route with that threshold would touch; for a blur: the share it would catch). With
``--weights`` (a routed defense with a deblurring route), also the share of crops its route touches
(:func:`recondefense.routing.deblur_share` above 0) and their mean share: images it does not touch come out exactly
as without the route. Validation data only; a minute or two on a CPU.

    python scripts/sharpness_probe.py [--limit 231] [--corruptions defocus_blur,glass_blur,zoom_blur,gaussian_blur]
        [--below 0.2,0.3,0.4] [--weights NAME] [--json rows.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from recondefense import ReconstructiveDefense
from recondefense.arguments import corruption_list, positive_int
from recondefense.corruptions import corrupt
from recondefense.evaluate.tiers import object_test_set
from recondefense.levels import blur_ratio, deblur_share, sharpness
from recondefense.purifier_config import PurifierConfig


def _percentiles(values: torch.Tensor) -> list[float]:
    return torch.quantile(values, torch.tensor([0.05, 0.5, 0.95])).tolist()


def sharpness_rows(
    limit: int, corruptions: tuple[str, ...], below: tuple[float, ...], config: PurifierConfig | None = None
) -> list[dict]:
    """One row for the clean crops, then one per corruption and severity: ``{"corruption", "severity", "p5", "p50",
    "p95", "below", "ratio"}``, ``below`` mapping each threshold to the share of crops at or under it, ``ratio`` the
    blur ratio's percentiles; with ``config`` (a routed purifier's, with a deblurring route) also ``"touched"`` and
    ``"mean_share"``."""
    data = object_test_set("val")
    images = torch.stack([data[i][0] for i in range(min(limit, len(data)))])
    cases = [("clean", 0)] + [(name, severity) for name in corruptions for severity in range(1, 6)]
    rows = []
    for name, severity in cases:
        generator = torch.Generator().manual_seed(0)
        x = images if name == "clean" else corrupt(images, name, severity, generator=generator)
        values = sharpness(x)
        p5, p50, p95 = _percentiles(values)
        shares = {str(b): (values <= b).float().mean().item() for b in below}
        row = {"corruption": name, "severity": severity, "p5": p5, "p50": p50, "p95": p95, "below": shares}
        row["ratio"] = _percentiles(blur_ratio(x))
        if config is not None:
            share = deblur_share(x, config.deblur_sharpness_range, config.deblur_ratio_range)
            row |= {"touched": (share > 0).float().mean().item(), "mean_share": share.mean().item()}
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=positive_int, default=231, help="validation crops (the first ones)")
    parser.add_argument(
        "--corruptions",
        type=corruption_list,
        default=("defocus_blur", "glass_blur", "zoom_blur", "gaussian_blur", "motion_blur"),
        help="comma-separated",
    )
    parser.add_argument("--below", default="0.2,0.3,0.4", help="comma-separated sharpness thresholds")
    parser.add_argument("--weights", default=None, help="a routed defense whose deblurring route to count")
    parser.add_argument("--json", default=None, help="also write the rows here")
    args = parser.parse_args(argv)
    config = None
    if args.weights:
        config = ReconstructiveDefense.from_pretrained(args.weights).purifier_config
        if config.arch != "routed" or config.deblur_sharpness_range is None:
            parser.error(f"--weights {args.weights}: not a routed defense with a deblurring route")
    try:
        below = tuple(float(b) for b in args.below.split(","))
    except ValueError:
        parser.error(f"--below {args.below!r}: expected comma-separated numbers")
    rows = sharpness_rows(args.limit, args.corruptions, below, config)
    print(f"sharpness and blur ratio of {args.limit} validation object crops (recondefense.levels)")
    touched = f" {'touched':>7} {'share':>6}" if config is not None else ""
    print(
        f"{'corruption':16} {'sev':>3} {'p5':>6} {'p50':>6} {'p95':>6} "
        + " ".join(f"<={b:<5}" for b in below)
        + f" {'ratio p5':>8} {'p50':>5} {'p95':>5}{touched}"
    )
    for row in rows:
        shares = " ".join(f"{row['below'][str(b)]:7.3f}" for b in below)
        ratio = " ".join(f"{r:5.2f}" for r in row["ratio"])
        route = f" {row['touched']:7.3f} {row['mean_share']:6.3f}" if config is not None else ""
        print(
            f"{row['corruption']:16} {row['severity']:3d} {row['p5']:6.3f} {row['p50']:6.3f} {row['p95']:6.3f} {shares}"
            f"    {ratio}{route}"
        )
    if args.json:
        payload = {"limit": args.limit, "weights": args.weights, "rows": rows}
        Path(args.json).write_text(json.dumps(payload, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
