"""Where a gated or routed defense loses attacked images: at its gate, or in the purifier behind it.

On the first ``--images`` validation object crops (``imagenet-objects-val``: consensus labels of Lite0 and Lite2,
never a test crop), clean and under each of the tier's oblivious attacks against Lite0, one markdown row each:

- ``none``: the classifier alone;
- ``defense``: behind the defense as shipped;
- ``purifier alone``: behind its adversarial purifier (route 1, ``.bottleneck``; its ``.strong`` purifier where it
  has one, which serves the images the gate flags) on every image, as if the gate always opened: what the purifier
  recovers, and on the clean row its own fidelity, a ceiling for the rest;
- ``hard gate``: the purifier's output where the gate logit is above 0, the image untouched elsewhere (a gate that
  opens all the way or not at all);
- ``gate open``: the share of images whose gate logit is above 0.

A purifier without a gate (e.g. a plain AE, a candidate for route 1) gets ``defense`` = ``purifier alone`` and
``-`` in the gate's columns: the screen of a new purifier before it is composed.

    python scripts/recovery_breakdown.py [--weights NAME or FOLDER] [--images 96] [--attacks fgsm,pgd,deepfool]

About 10 s an image on one core with DeepFool, most of it the attacks.
"""

from __future__ import annotations

import argparse
import math
import sys

import torch
from torch import nn

from recondefense import ReconstructiveDefense
from recondefense.classifiers import load_classifier
from recondefense.defense import DEFAULT_IMAGENET_WEIGHTS
from recondefense.evaluate.run import build_attack, run_attack
from recondefense.evaluate.tiers import TIERS, object_test_set

COLUMNS = ("none", "defense", "purifier alone", "hard gate", "gate open")


def purifiers(net: nn.Module) -> tuple[nn.Module, nn.Module | None]:
    """``(P, S)`` of a network: the purifier its gate's flagged images get and the other one beside it: its strong
    AE and small AE (routed with a strong one), its AE (gated or routed) and None, or itself and None."""
    strong = getattr(net, "strong", None)
    small = getattr(net, "bottleneck", None)
    if strong is not None:
        return strong, small
    return (small, None) if small is not None else (net, None)


@torch.no_grad()
def breakdown(net: nn.Module, classifier: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """The :data:`COLUMNS` for one set of images: ``net`` a gated or routed purifier (``(N, C, H, W)`` in [0, 1]
    -> the same; without a gate: a purifier alone, its gate columns NaN), ``classifier`` pixel-space logits,
    ``labels`` ``(N,)``; accuracies and the open share in [0, 1]."""
    outputs = {"none": images, "defense": net(images)}
    gated = hasattr(net, "gate_logit")
    if gated:
        opened = net.gate_logit(images) > 0
        alone = outputs["purifier alone"] = purifiers(net)[0](images)  # what flagged images get
        outputs["hard gate"] = torch.where(opened[:, None, None, None], alone, images)
    row = {name: (classifier(x).argmax(1) == labels).float().mean().item() for name, x in outputs.items()}
    if not gated:  # the purifier alone is the defense; no gate to open
        return {**row, "purifier alone": row["defense"], "hard gate": math.nan, "gate open": math.nan}
    return {**row, "gate open": opened.float().mean().item()}


def validation_sets(
    count: int, attacks: str, batch_size: int = 16
) -> tuple[nn.Module, torch.Tensor, dict[str, torch.Tensor]]:
    """Lite0 (the tier's target), the labels ``(n,)`` of the first ``count`` validation object crops and the crops
    ``(n, 3, 224, 224)`` in [0, 1] clean and under each of ``attacks`` (comma-separated, the tier's parameters),
    ``{"clean": ..., "fgsm": ...}``, the attacks aimed at Lite0 alone."""
    tier = TIERS["imagenet-objects-val"]
    crops = object_test_set("val")
    count = min(count, len(crops))
    x = torch.stack([crops[i][0] for i in range(count)])
    y = torch.tensor([int(crops[i][1]) for i in range(count)])
    classifier = load_classifier(tier.classifier).eval()
    sets = {"clean": x}
    for name in filter(None, attacks.split(",")):
        attack = build_attack(name, classifier, tier)
        sets[name] = torch.cat(
            [run_attack(attack, x[i : i + batch_size], y[i : i + batch_size]) for i in range(0, count, batch_size)]
        )
    return classifier, y, sets


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--weights", default=DEFAULT_IMAGENET_WEIGHTS, help="gated or routed weights (others: the purifier alone)"
    )
    parser.add_argument("--images", type=int, default=96)
    parser.add_argument("--attacks", default="fgsm,pgd,deepfool", help="comma-separated, the tier's parameters")
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args(argv)
    classifier, y, sets = validation_sets(args.images, args.attacks, args.batch_size)
    net = ReconstructiveDefense.from_pretrained(args.weights).autoencoder.eval()
    print(f"{args.weights}, {len(y)} validation object crops, target {TIERS['imagenet-objects-val'].classifier}\n")
    print("| images | " + " | ".join(COLUMNS) + " |\n|---|" + "---|" * len(COLUMNS))
    for name, images in sets.items():
        row = breakdown(net, classifier, images, y)
        cells = ("-" if math.isnan(row[c]) else f"{row[c]:.3f}" for c in COLUMNS)
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
