"""Certification throughput: noise samples per second of the bare classifier vs denoiser + classifier.

Both count the classes of the same ``n`` noisy copies of the same Fashion-MNIST test images
(``recondefense.certify.sample_counts``), in the same run. Goal (issue 15): ratio >= 2/3.

    python benchmarks/certify.py [--weights fashionmnist-smallcnn-gaussian-0.25-fast] [--images 5] [--n 2000] [--threads 1]
        [--precision bfloat16] [--compile]

Both pipelines run in the same precision and mode (``recondefense.certify.base_classifier``); the time a
1,000-image certification at n = 10,000 would take is printed from the measured rate.

The default denoiser is the width-8 ``-fast`` one; ``--weights fashionmnist-smallcnn-gaussian-0.25`` measures the
width-16 one.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

from recondefense import ReconstructiveDefense
from recondefense.certify import PRECISIONS, base_classifier, sample_counts
from recondefense.classifiers import load_classifier
from recondefense.data import fashion_mnist


def samples_per_second(model: nn.Module, images: list[torch.Tensor], sigma: float, n: int, batch: int) -> float:
    """Noise samples per second of ``model`` over ``n`` noisy copies of each image (after one warm-up image)."""
    generator = torch.Generator().manual_seed(0)
    with torch.inference_mode():
        sample_counts(model, images[0], sigma, batch, batch_size=batch, generator=generator)
        start = time.perf_counter()
        for image in images:
            sample_counts(model, image, sigma, n, batch_size=batch, generator=generator)
    return len(images) * n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", default="fashionmnist-smallcnn-gaussian-0.25-fast")
    parser.add_argument("--classifier", default="fashionmnist-smallcnn")
    parser.add_argument("--sigma", type=float, default=0.25)
    parser.add_argument("--images", type=int, default=5)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--precision", default="float32", choices=sorted(PRECISIONS))
    parser.add_argument("--compile", action="store_true")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    classifier = load_classifier(args.classifier)
    denoiser = ReconstructiveDefense.from_pretrained(args.weights)
    bare_model = base_classifier(classifier, precision=args.precision, compile=args.compile)
    defended = base_classifier(classifier, denoiser, precision=args.precision, compile=args.compile)
    test = fashion_mnist("test")
    images = [test[i][0] for i in range(args.images)]
    bare = samples_per_second(bare_model, images, args.sigma, args.n, args.batch_size)
    ours = samples_per_second(defended, images, args.sigma, args.n, args.batch_size)
    mode = f"{args.precision}{', compiled' if args.compile else ''}"
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {mode}, {args.images} images x {args.n} samples"
    )
    print(f"bare {args.classifier}: {bare:,.0f} samples/s; {args.weights} + classifier: {ours:,.0f} samples/s")
    print(f"ratio (goal >= 0.667): {ours / bare:.3f}")
    print(
        f"1,000 images x 10,100 samples at this rate: {1000 * 10_100 / ours / 60:.0f} min with the denoiser (goal < 60)"
    )


if __name__ == "__main__":
    main()
