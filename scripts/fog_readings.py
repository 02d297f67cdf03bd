"""Where a routed defense's fog detector reads fog on images that are not foggy: the margin of its ``fog_range``.

On ``--images`` random crops of the validation split's object photographs (:class:`~recondefense.data.ObjectCrops`,
never trained on; more and more varied than the validation tier's fixed crops), clean and under the paper's FGSM and
PGD against each of Lite0, Lite1 (which the detector's attacked negatives never came from) and Lite2, each attack
aimed at the classifier's own prediction: one markdown row per kind of image, the share whose fog probability is
above each of ``--thresholds`` and the largest probability. A share above a range's low end is a share of images
whose routes :func:`~recondefense.haze.fog_share` shrinks: an attacked image there passes the gate partly unpurified.

    python scripts/fog_readings.py [--weights NAME or FOLDER] [--images 256] [--thresholds 0.5,0.9]

About 20 minutes on one CPU core for 256 crops (the PGD runs are most of it).
"""

from __future__ import annotations

import argparse
import sys

import torch

from recondefense import ReconstructiveDefense
from recondefense.arguments import positive_int
from recondefense.attacks import FGSM, PGD
from recondefense.budgets import IMAGENET
from recondefense.classifiers import load_classifier
from recondefense.data import ObjectCrops
from recondefense.defense import DEFAULT_IMAGENET_WEIGHTS

#: The classifiers the attacks aim at.
TARGETS = ("imagenet-efficientnet_lite0", "imagenet-efficientnet_lite1", "imagenet-efficientnet_lite2")
#: Images attacked and read together.
BATCH = 32


@torch.no_grad()
def fog_probability(detector: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
    """The detector's probability of fog: ``(N, C, H, W)`` in [0, 1] -> ``(N,)`` in [0, 1]."""
    return torch.cat([torch.sigmoid(detector(images[i : i + BATCH])) for i in range(0, len(images), BATCH)])


def attacked_sets(images: torch.Tensor) -> dict[str, torch.Tensor]:
    """``images`` under FGSM and PGD (the ImageNet tier's budgets) against each of :data:`TARGETS`' own top-1
    predictions: ``{"fgsm imagenet-efficientnet_lite0": (N, C, H, W) in [0, 1], ...}``."""
    sets = {}
    for name in TARGETS:
        classifier = load_classifier(name).eval()
        with torch.no_grad():
            labels = torch.cat([classifier(images[i : i + BATCH]).argmax(1) for i in range(0, len(images), BATCH)])
        for attack_name, attack in (
            ("fgsm", FGSM(classifier, **IMAGENET.fgsm)),
            ("pgd", PGD(classifier, **IMAGENET.pgd)),
        ):
            sets[f"{attack_name} {name}"] = torch.cat(
                [attack(images[i : i + BATCH], labels[i : i + BATCH]) for i in range(0, len(images), BATCH)]
            )
        print(f"attacked against {name}", file=sys.stderr, flush=True)
    return sets


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", default=DEFAULT_IMAGENET_WEIGHTS, help="a routed defense with a fog step")
    parser.add_argument("--images", type=positive_int, default=256, help="random validation crops")
    parser.add_argument("--thresholds", default="0.5,0.9", help="comma-separated fog probabilities")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    thresholds = [float(t) for t in args.thresholds.split(",")]
    detector = getattr(ReconstructiveDefense.from_pretrained(args.weights).autoencoder, "fog", None)
    if detector is None:
        parser.error(f"{args.weights} has no fog detector (a routed defense with a fog_range has one)")
    detector.eval()
    crops = ObjectCrops("val", length=args.images, seed=args.seed)
    images = torch.stack([crops[i][0] for i in range(len(crops))])
    sets = {"clean": images, **attacked_sets(images)}
    print(f"{args.weights}'s fog detector, {len(images)} random validation crops (seed {args.seed})\n")
    header = " | ".join(f"above {t:g}" for t in thresholds)
    print(f"| images | {header} | largest |\n|---|" + "---|" * (len(thresholds) + 1))
    for kind, batch in sets.items():
        probability = fog_probability(detector, batch)
        shares = " | ".join(f"{(probability > t).float().mean().item():.4f}" for t in thresholds)
        print(f"| {kind} | {shares} | {probability.max().item():.4f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
