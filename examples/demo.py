"""`make demo`: attack a Fashion-MNIST classifier with PGD, then defend it with the shipped weights.

Prints the accuracy of the classifier with and without `Defended` on the first N test images, under
no attack, PGD aimed at the classifier alone (the paper's setting) and PGD aimed at the defended
pipeline end to end (an attacker who knows the defense), and writes the paper's Figure 1 as a PNG.

    python examples/demo.py [--images 500] [--weights fashionmnist-smallcnn-pgd] [--out demo-output]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Subset

from recondefense import Defended, ReconstructiveDefense
from recondefense.attacks import PGD
from recondefense.classifiers import load_classifier
from recondefense.data import fashion_mnist
from recondefense.evaluate import TIERS, save_figures


def accuracy(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    with torch.no_grad():
        return (model(images).argmax(1) == labels).float().mean().item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=500, help="first N Fashion-MNIST test images")
    parser.add_argument("--weights", default="fashionmnist-smallcnn-pgd", help="registered defense weights")
    parser.add_argument("--out", default="demo-output", help="folder for the figures")
    args = parser.parse_args()
    start = time.time()
    tier = TIERS["fashionmnist"]
    classifier = load_classifier(tier.classifier)  # takes [0, 1] pixels, normalizes inside
    defended = Defended(classifier, ReconstructiveDefense.from_pretrained(args.weights), mean=None, std=None)
    images, labels = next(iter(DataLoader(Subset(fashion_mnist("test"), range(args.images)), batch_size=args.images)))

    pgd = PGD(classifier, **tier.pgd)  # oblivious: the attacker sees the classifier only
    adversarial = pgd(images, labels)
    end_to_end = PGD(defended, **tier.pgd)(images, labels)  # the attacker differentiates through the defense

    print(f"{args.images} Fashion-MNIST test images; PGD eps={tier.pgd['eps']}, {tier.pgd['steps']} steps")
    print(f"{'':34s}{'no defense':>12s}{'Defended':>12s}")
    rows = (
        ("clean", images, images),
        ("PGD on the classifier (paper)", adversarial, adversarial),
        ("PGD end to end (knows defense)", adversarial, end_to_end),
    )
    for name, x_plain, x_defended in rows:
        print(f"{name:34s}{accuracy(classifier, x_plain, labels):12.3f}{accuracy(defended, x_defended, labels):12.3f}")
    for path in save_figures(tier, ("none", "jpeg", "fd", args.weights), args.weights, Path(args.out)):
        print(f"wrote {path}")
    print(
        f"done in {time.time() - start:.0f} s. The defense undoes attacks that ignore it; an attacker who "
        "differentiates through it still wins (see the README's adaptive columns)."
    )


if __name__ == "__main__":
    main()
