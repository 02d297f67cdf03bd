"""A gated defense's gate logits on validation object crops: clean, under each corruption at severities 1, 3, 5,
and (``--pgd``) under the paper's PGD against Lite0.

Why a routed gate started from a gated one needs ``share_opening`` (issue 25): the gate's logit grows with the
image's high-frequency energy, without bound, so on noise-corrupted images it runs to hundreds.

The same logits place a routed purifier's noise route (``scripts/compose_routed.py --noise-route-above T``): an
image goes to the corruption route where the logit exceeds ``T``, and the table shows where PGD ends and noise
starts.

    python scripts/gate_logits.py [--weights NAME] [--images 16] [--pgd] [--routes]

``--routes``: a routed defense's share of each expert route instead (largest and median per row): where its noise
route (route 2) takes attacked images, and how much.

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


def _images(images: int, pgd: bool) -> dict[str, torch.Tensor]:
    """``{"clean": x, "<corruption>@<severity>": ..., "pgd": ...}``, each ``(images, 3, H, W)`` in [0, 1]: the first
    ``images`` val-split object crops (seeded corruptions; PGD against Lite0 with the object tier's settings, labels
    Lite0's clean predictions, with ``pgd``)."""
    crops = ObjectCrops("val", length=images)
    x = torch.stack([crops[i][0] for i in range(images)])
    out = {"clean": x}
    for name in CORRUPTIONS:
        for severity in (1, 3, 5):
            out[f"{name}@{severity}"] = corrupt(x, name, severity, generator=torch.Generator().manual_seed(0))
    if pgd:
        classifier = load_classifier("imagenet-efficientnet_lite0").eval()
        with torch.no_grad():
            labels = classifier(x).argmax(1)
        out["pgd"] = run_attack(build_attack("pgd", classifier, TIERS["imagenet-objects"]), x, labels)
    return out


def _gated(weights: str) -> torch.nn.Module:
    net = ReconstructiveDefense.from_pretrained(weights).autoencoder.eval()
    if not hasattr(net, "gate_logit"):
        raise ValueError(f"{weights} has no gate (arch gated or routed)")
    return net


def gate_logits(weights: str, images: int, pgd: bool = False) -> dict[str, torch.Tensor]:
    """The gate logit of each image of :func:`_images`: ``{"clean": logits, "<corruption>@<severity>": logits, ...,
    "pgd": logits}``, each ``(images,)``."""
    net = _gated(weights)
    with torch.no_grad():
        return {key: net.gate_logit(x) for key, x in _images(images, pgd).items()}


def route_shares(weights: str, images: int, pgd: bool = False) -> dict[str, torch.Tensor]:
    """A routed defense's route probabilities on :meth:`~recondefense.routing.RouteMixture.prepare`'s image, per
    image of :func:`_images`: each ``(images, routes)``, rows summing to 1 (route 0 passes; before the share a dot
    removal, dehaze or snow step settles, so an upper bound on each expert's share)."""
    net = _gated(weights)
    if not hasattr(net, "routes"):
        raise ValueError(f"{weights} has one gate logit, no routes (arch routed)")
    with torch.no_grad():
        return {key: net.routes(net.prepare(x)) for key, x in _images(images, pgd).items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", default=DEFAULT_IMAGENET_WEIGHTS, help="gated or routed weights")
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--pgd", action="store_true", help="also under the paper's PGD against Lite0")
    parser.add_argument(
        "--routes", action="store_true", help="a routed defense's largest and median share of each expert route instead"
    )
    args = parser.parse_args(argv)
    if args.routes:
        shares = route_shares(args.weights, args.images, args.pgd)
        experts = next(iter(shares.values())).shape[1] - 1
        print(f"{'images':22} " + " ".join(f"{f'route {k} max':>12} {'median':>8}" for k in range(1, experts + 1)))
        for key, routes in shares.items():
            cells = (f"{routes[:, k].max():12.3g} {routes[:, k].median():8.3g}" for k in range(1, experts + 1))
            print(f"{key:22} " + " ".join(cells))
        return 0
    print(f"{'images':22} {'mean logit':>10} {'min':>8} {'max':>8} {'open':>5}")
    for key, logits in gate_logits(args.weights, args.images, args.pgd).items():
        print(
            f"{key:22} {logits.mean():10.1f} {logits.min():8.1f} {logits.max():8.1f} {(logits > 0).float().mean():5.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
