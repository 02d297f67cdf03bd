"""A gated defense's gate logits on validation object crops: clean, under each corruption at severities 1, 3, 5,
and (``--pgd``) under the paper's PGD against Lite0.

Why a routed gate started from a gated one needs ``share_opening`` (issue 25): the gate's logit grows with the
image's high-frequency energy, without bound, so on noise-corrupted images it runs to hundreds.

The same logits place a routed purifier's noise route (``scripts/compose_routed.py --noise-route-above T``): an
image goes to the corruption route where the logit exceeds ``T``, and the table shows where PGD ends and noise
starts.

    python scripts/gate_logits.py [--weights NAME] [--images 16] [--pgd]

Seconds on a CPU without ``--pgd`` (no classifier, no attack); PGD adds about 1.3 s an image on 2 cores.
"""

from __future__ import annotations

import argparse
import sys

import torch

from recondefense import ReconstructiveDefense
from recondefense.classifiers import load_classifier
from recondefense.corruptions import CORRUPTIONS, corrupt
from recondefense.data.objects import ObjectCrops
from recondefense.defense import DEFAULT_IMAGENET_WEIGHTS
from recondefense.evaluate.run import build_attack, run_attack
from recondefense.evaluate.tiers import TIERS


def gate_logits(weights: str, images: int, pgd: bool = False) -> dict[str, torch.Tensor]:
    """``{"clean": logits, "<corruption>@<severity>": logits, ..., "pgd": logits}``, each ``(images,)``, of the
    first ``images`` val-split object crops (seeded corruptions; PGD against Lite0 with the object tier's settings,
    labels Lite0's clean predictions, with ``pgd``)."""
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
    if pgd:
        classifier = load_classifier("imagenet-efficientnet_lite0").eval()
        with torch.no_grad():
            labels = classifier(x).argmax(1)
        attacked = run_attack(build_attack("pgd", classifier, TIERS["imagenet-objects"]), x, labels)
        with torch.no_grad():
            out["pgd"] = net.gate_logit(attacked)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", default=DEFAULT_IMAGENET_WEIGHTS, help="gated or routed weights")
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--pgd", action="store_true", help="also under the paper's PGD against Lite0")
    args = parser.parse_args(argv)
    print(f"{'images':22} {'mean logit':>10} {'min':>8} {'max':>8} {'open':>5}")
    for key, logits in gate_logits(args.weights, args.images, args.pgd).items():
        print(
            f"{key:22} {logits.mean():10.1f} {logits.min():8.1f} {logits.max():8.1f} {(logits > 0).float().mean():5.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
