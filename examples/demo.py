"""`make demo`: attack a classifier with PGD, then defend it with the shipped weights.

Default: EfficientNet-Lite0 on the 20 labelled ImageNet photos of foolbox, defended by
``Defended(model)`` (the default ImageNet weights, ``recondefense.defense.DEFAULT_IMAGENET_WEIGHTS``;
``--help`` names them). ``--tier fashionmnist`` runs the same on the first ``--images`` Fashion-MNIST
test images with ``fashionmnist-smallcnn-pgd``. ``--weights`` and ``--out`` are checked before anything runs.

Prints accuracy with and without `Defended` under no attack, PGD aimed at the classifier alone (the
paper's setting) and PGD aimed at the defended pipeline end to end (an attacker who knows the
defense), and writes the paper's Figure 1 (and a Figure 2-style grid of the baselines) as PNGs.

    python examples/demo.py [--tier imagenet-photos|fashionmnist] [--images N] [--weights NAME] [--out demo-output]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Subset

from recondefense import Defended, ReconstructiveDefense
from recondefense.arguments import positive_int
from recondefense.attacks import PGD
from recondefense.classifiers import load_classifier
from recondefense.defense import DEFAULT_IMAGENET_WEIGHTS
from recondefense.evaluate import TIERS, save_figures
from recondefense.files import output_problem

#: Per demo tier: the shipped defense and the default number of test images.
DEMO_DEFAULTS = {
    "imagenet-photos": (DEFAULT_IMAGENET_WEIGHTS, 20),
    "fashionmnist": ("fashionmnist-smallcnn-pgd", 500),
}
#: The baselines shown next to ours in Figure 2.
FIGURE_BASELINES = ("none", "jpeg", "fd", "rrp")


def accuracy(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    with torch.no_grad():
        return (model(images).argmax(1) == labels).float().mean().item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tier", default="imagenet-photos", choices=sorted(DEMO_DEFAULTS))
    parser.add_argument(
        "--images", type=positive_int, default=None, help="first N test images, N >= 1 (default: 20 / 500)"
    )
    parser.add_argument(
        "--weights",
        default=None,
        help="defense weights: registered name, hub repo id or folder, trained for the tier's classifier "
        f"(default: {', '.join(f'{t}: {w}' for t, (w, _) in sorted(DEMO_DEFAULTS.items()))})",
    )
    parser.add_argument("--out", default="demo-output", help="folder for the figures")
    args = parser.parse_args()
    start = time.time()
    torch.manual_seed(0)
    tier = TIERS[args.tier]
    default_weights, default_images = DEMO_DEFAULTS[args.tier]
    weights = args.weights or default_weights
    # Checked before the classifier loads and the attacks run: the output folder, then the weights.
    problem = output_problem("--out", Path(args.out), folder=True)
    if problem is not None:
        parser.error(problem)
    try:
        defense = ReconstructiveDefense.from_pretrained(weights)
    except (OSError, ValueError) as err:
        parser.error(f"--weights {weights}: {err}")
    trained_for = defense.meta.get("classifier")
    if trained_for and tier.classifier not in str(trained_for).split(","):
        parser.error(
            f"--weights {weights} was trained for {trained_for}, but --tier {args.tier} uses {tier.classifier}: "
            f"pass weights trained for it, or omit --weights (default {default_weights})"
        )
    classifier = load_classifier(tier.classifier)  # takes [0, 1] pixels, normalizes inside
    # Defended(classifier, mean=None, std=None) alone loads the default ImageNet weights; mean/std None: the
    # classifier takes [0, 1] pixels (it normalizes inside).
    defended = Defended(classifier, defense, mean=None, std=None)
    test_set = tier.test_set(classifier)
    count = min(default_images if args.images is None else args.images, len(test_set))
    images, labels = next(iter(DataLoader(Subset(test_set, range(count)), batch_size=count)))

    pgd = PGD(classifier, **tier.pgd)  # oblivious: the attacker sees the classifier only
    adversarial = pgd(images, labels)
    end_to_end = PGD(defended, **tier.pgd)(images, labels)  # the attacker differentiates through the defense

    print(f"{tier.notes}\n{count} images, classifier {tier.classifier}, defense {weights}")
    print(f"PGD eps={tier.pgd['eps']}, step {tier.pgd['alpha']}, {tier.pgd['steps']} steps; accuracy:")
    print(f"{'':34s}{'no defense':>12s}{'Defended':>12s}")
    rows = (
        ("clean", images, images),
        ("PGD on the classifier (paper)", adversarial, adversarial),
        ("PGD end to end (knows defense)", adversarial, end_to_end),
    )
    for name, x_plain, x_defended in rows:
        print(f"{name:34s}{accuracy(classifier, x_plain, labels):12.3f}{accuracy(defended, x_defended, labels):12.3f}")
    for path in save_figures(tier, (*FIGURE_BASELINES, weights), weights, Path(args.out)):
        print(f"wrote {path}")
    print(
        f"done in {time.time() - start:.0f} s. The defense undoes attacks that ignore it; an attacker who "
        "differentiates through it is the honest test (see the README's end-to-end columns)."
    )


if __name__ == "__main__":
    main()
