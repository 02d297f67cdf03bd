"""Would a dehazing step with no weights undo ImageNet-C's fog, and can an image's pixels say when to apply it?

Lite0's accuracy on the first ``--limit`` crops of ``imagenet-objects-val`` (consensus labels), clean and under fog
at severities 1-5, as they are and after the dark-channel dehaze of He, Sun and Tang ("Single image haze removal
using dark channel prior", CVPR 2009): the haze ``t`` read as the per-pixel minimum over the channels and a
``--patch`` window, smoothed by a Gaussian of ``--sigma`` pixels, and removed as ``(x - t) / (1 - t)``. Beside it,
the quartiles of :func:`~recondefense.levels.sharpness` and :func:`~recondefense.levels.black_point` (what the
routed purifier's weightless corrections already read), clean and fogged, to see whether either tells the two apart.
Validation data only; a couple of minutes on 2 CPU cores.

    python scripts/dehaze_probe.py [--limit 96] [--patch 15] [--sigma 8]
"""

from __future__ import annotations

import argparse
import sys

import torch

from recondefense.arguments import positive_int
from recondefense.classifiers import load_classifier
from recondefense.corruptions import corrupt
from recondefense.evaluate.tiers import object_test_set
from recondefense.haze import dehaze
from recondefense.levels import black_point, sharpness


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=positive_int, default=96, help="validation crops (the first ones)")
    parser.add_argument("--patch", type=positive_int, default=15, help="the dark channel's window, in pixels")
    parser.add_argument("--sigma", type=float, default=8.0, help="the haze map's Gaussian smoothing, in pixels")
    args = parser.parse_args(argv)
    data = object_test_set("val")
    count = min(args.limit, len(data))
    clean = torch.stack([data[i][0] for i in range(count)])
    labels = torch.tensor([data[i][1] for i in range(count)])
    classifier = load_classifier("imagenet-efficientnet_lite0").eval()
    quartiles = torch.tensor([0.25, 0.5, 0.75])

    def accuracy(images: torch.Tensor) -> float:
        return (classifier(images).argmax(1) == labels).float().mean().item()

    def spread(values: torch.Tensor) -> str:
        return " / ".join(f"{v:.3f}" for v in values.quantile(quartiles).tolist())

    print(
        f"Lite0 accuracy on {count} validation object crops; dark-channel dehaze, patch {args.patch}, sigma {args.sigma}"
    )
    print(f"{'images':8} {'as is':>6} {'dehazed':>8}   sharpness quartiles    black point quartiles")
    with torch.no_grad():
        for severity in range(6):
            name = "clean" if severity == 0 else f"fog {severity}"
            generator = torch.Generator().manual_seed(0)
            images = clean if severity == 0 else corrupt(clean, "fog", severity, generator=generator)
            fixed = dehaze(images, args.patch, args.sigma)
            print(
                f"{name:8} {accuracy(images):6.3f} {accuracy(fixed):8.3f}   "
                f"{spread(sharpness(images)):21}  {spread(black_point(images))}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
