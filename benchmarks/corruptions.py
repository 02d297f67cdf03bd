"""Corruption speed: a batch through all 15 ImageNet-C corruptions x 5 severities vs one PGD-10 attack on it.

Both run on the same test images (pixels in [0, 1]) in the same process: the corruptions with
``recondefense.corruptions.corrupt`` on the whole batch (75 calls), PGD with the tier's parameters against its
classifier. ``--tier fashionmnist`` (default): 28 px Fashion-MNIST test images, eps 0.04, step 0.016, 10 steps,
the shipped ``fashionmnist-smallcnn``. ``--tier imagenet-objects``: the first 224 px test crops of the object-photo
tier, eps 0.01, step 0.004, 10 steps, EfficientNet-Lite0, labelled by its own clean predictions. Each is timed
``--repeats`` times after a warm-up and the median is kept. Goal (issues 14 and 25): ratio (corruptions / PGD) < 1.

    python benchmarks/corruptions.py [--tier fashionmnist|imagenet-objects] [--images N] [--repeats 3] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from recondefense.attacks import PGD
from recondefense.classifiers import load_classifier
from recondefense.corruptions import CORRUPTIONS, corrupt
from recondefense.data import fashion_mnist, object_test_crops
from recondefense.evaluate import TIERS


def median_seconds(work: Callable[[], object], repeats: int) -> float:
    """Median wall-clock seconds of ``work()`` over ``repeats`` runs after one warm-up run."""
    work()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tier", choices=("fashionmnist", "imagenet-objects"), default="fashionmnist")
    parser.add_argument("--images", type=int, default=None, help="batch size (default 64 Fashion-MNIST, 8 objects)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    tier = TIERS[args.tier]
    classifier = load_classifier(tier.classifier).eval()
    if args.tier == "fashionmnist":
        count, test = args.images or 64, fashion_mnist("test")
    else:
        count, test = args.images or 8, object_test_crops()
    images = torch.stack([test[i][0] for i in range(count)])
    if args.tier == "fashionmnist":
        labels = torch.tensor([test[i][1] for i in range(count)])
    else:  # the crops are unlabelled: the attack moves the classifier off its own clean prediction
        with torch.no_grad():
            labels = classifier(images).argmax(1)
    pgd = PGD(classifier, **tier.pgd)
    generator = torch.Generator().manual_seed(0)

    def all_corruptions() -> None:
        for name in CORRUPTIONS:
            for severity in range(1, 6):
                corrupt(images, name, severity, generator=generator)

    corruption_s = median_seconds(all_corruptions, args.repeats)
    pgd_s = median_seconds(lambda: pgd(images, labels), args.repeats)
    size = "x".join(map(str, images.shape[1:]))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {count} {args.tier} images of {size}")
    print(f"15 corruptions x 5 severities: {corruption_s:.3f} s; PGD-10 on {tier.classifier}: {pgd_s:.3f} s")
    print(f"ratio corruptions / PGD (goal < 1): {corruption_s / pgd_s:.3f}")


if __name__ == "__main__":
    main()
