"""A gated defense's gate logits on validation object crops, clean and under each corruption at severities 1, 3, 5.

Why a routed gate started from a gated one needs ``share_opening`` (issue 25): the gate's logit grows with the
image's high-frequency energy, without bound, so on noise-corrupted images it runs to hundreds.

    python scripts/gate_logits.py [--weights NAME] [--images 16]

Seconds on a CPU; no classifier, no attack.
"""

from __future__ import annotations

import argparse
import sys

import torch

from recondefense import ReconstructiveDefense
from recondefense.corruptions import CORRUPTIONS, corrupt
from recondefense.data.objects import ObjectCrops
from recondefense.defense import DEFAULT_IMAGENET_WEIGHTS


def gate_logits(weights: str, images: int) -> dict[str, torch.Tensor]:
    """``{"clean": logits, "<corruption>@<severity>": logits, ...}``, each ``(images,)``, of the first ``images``
    val-split object crops (seeded corruptions)."""
    net = ReconstructiveDefense.from_pretrained(weights).autoencoder
    if not hasattr(net, "gate_logit"):
        raise ValueError(f"{weights} has no gate (arch gated or routed)")
    crops = ObjectCrops("val", length=images)
    x = torch.stack([crops[i][0] for i in range(images)])
    out = {}
    with torch.no_grad():
        out["clean"] = net.gate_logit(x)
        for name in CORRUPTIONS:
            for severity in (1, 3, 5):
                corrupted = corrupt(x, name, severity, generator=torch.Generator().manual_seed(0))
                out[f"{name}@{severity}"] = net.gate_logit(corrupted)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", default=DEFAULT_IMAGENET_WEIGHTS, help="gated or routed weights")
    parser.add_argument("--images", type=int, default=16)
    args = parser.parse_args(argv)
    print(f"{'images':22} {'mean logit':>10} {'max':>8} {'open':>5}")
    for key, logits in gate_logits(args.weights, args.images).items():
        print(f"{key:22} {logits.mean():10.1f} {logits.max():8.1f} {(logits > 0).float().mean():5.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
