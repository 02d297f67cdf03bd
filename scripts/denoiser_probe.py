"""Weightless denoisers against the default's learned one, before Lite0, on noisy validation object crops.

Could a classical denoiser do the work of the default's route 2 (its learned noise denoiser), alone or beside it?
On the first ``--images`` crops of the validation sources (``imagenet-objects-val``, consensus labels of Lite0 and
Lite2, never a test crop), under each of ``--corruptions`` at severities 1-5 (seeded), one markdown row per method:
Lite0's accuracy at each severity and their mean. Methods (``--methods``, comma-separated):

- ``none``: the noisy crop; ``default``: the default of ``Defended(model)``; ``denoiser``: its route-2 denoiser alone;
- ``wavelet``: scikit-image's wavelet BayesShrink (YCbCr, soft thresholds, sigma estimated per image);
- ``tv``: total-variation denoising (Chambolle, weight the estimated sigma);
- ``denoiser>wavelet`` / ``wavelet>denoiser``: one after the other; ``mean``: the mean of the wavelet's and the
  denoiser's outputs.

    python scripts/denoiser_probe.py [--images 128] [--corruptions gaussian_noise,shot_noise] [--methods ...]

Needs the ``imagenet`` extra (scikit-image). About 25 minutes for the two noises, seven methods (all but
``default``) on 128 crops, on one core beside a training run; most of it the wavelet.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

import numpy as np
import torch

from recondefense import ReconstructiveDefense
from recondefense.classifiers import load_classifier
from recondefense.corruptions import corrupt, corruption_names
from recondefense.defense import DEFAULT_IMAGENET_WEIGHTS
from recondefense.evaluate.tiers import object_test_set

Method = Callable[[torch.Tensor], torch.Tensor]


def per_image(denoise: Callable[[np.ndarray], np.ndarray]) -> Method:
    """A scikit-image denoiser of one ``(H, W, C)`` float64 image as a batch method, ``(N, C, H, W)`` in [0, 1] ->
    the same (clipped to [0, 1])."""

    def method(images: torch.Tensor) -> torch.Tensor:
        out = [denoise(image.permute(1, 2, 0).double().numpy()).clip(0, 1) for image in images]
        return torch.stack([torch.from_numpy(o).permute(2, 0, 1).float() for o in out])

    return method


def methods(weights: str) -> dict[str, Method]:
    """The methods by name (module docstring); ``weights``: the routed defense whose route-2 denoiser is compared."""
    from skimage.restoration import denoise_tv_chambolle, denoise_wavelet, estimate_sigma

    net = ReconstructiveDefense.from_pretrained(weights).autoencoder.eval()
    if not hasattr(net, "corruption"):
        raise ValueError(f"{weights} has no route-2 denoiser (arch routed)")
    denoiser = net.corruption
    wavelet = per_image(
        lambda a: denoise_wavelet(
            a, method="BayesShrink", mode="soft", rescale_sigma=True, channel_axis=-1, convert2ycbcr=True
        )
    )
    tv = per_image(
        lambda a: denoise_tv_chambolle(
            a, weight=estimate_sigma(a, channel_axis=-1, average_sigmas=True), channel_axis=-1
        )
    )
    return {
        "none": lambda x: x,
        "default": net,
        "denoiser": denoiser,
        "wavelet": wavelet,
        "tv": tv,
        "denoiser>wavelet": lambda x: wavelet(denoiser(x)),
        "wavelet>denoiser": lambda x: denoiser(wavelet(x)),
        "mean": lambda x: 0.5 * (wavelet(x) + denoiser(x)),
    }


def probe(
    images: int, corruptions: list[str], names: list[str], weights: str = DEFAULT_IMAGENET_WEIGHTS
) -> dict[str, dict[str, list[float]]]:
    """``{corruption: {method: [accuracy at severities 1-5]}}`` of Lite0 on the first ``images`` validation crops.

    Raises:
        ValueError: an unknown method name.
    """
    table = methods(weights)
    unknown = sorted(set(names) - set(table))
    if unknown:
        raise ValueError(f"unknown methods {unknown}; expected some of {', '.join(table)}")
    crops = object_test_set("val")
    x = torch.stack([crops[i][0] for i in range(images)])
    y = torch.tensor([int(crops[i][1]) for i in range(images)])
    classifier = load_classifier("imagenet-efficientnet_lite0").eval()
    result: dict[str, dict[str, list[float]]] = {}
    for name in corruptions:
        result[name] = {m: [] for m in names}
        for severity in range(1, 6):
            noisy = corrupt(x, name, severity, generator=torch.Generator().manual_seed(severity))
            for m in names:
                with torch.no_grad():
                    out = torch.cat([table[m](noisy[i : i + 32]) for i in range(0, images, 32)])
                    result[name][m].append((classifier(out).argmax(1) == y).float().mean().item())
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=128, help="validation crops (the first N)")
    parser.add_argument("--corruptions", default="gaussian_noise,shot_noise")
    parser.add_argument("--methods", default="none,default,denoiser,wavelet,tv,denoiser>wavelet,wavelet>denoiser,mean")
    parser.add_argument("--weights", default=DEFAULT_IMAGENET_WEIGHTS, help="a routed defense")
    args = parser.parse_args(argv)
    if args.images < 1:
        parser.error("--images must be positive")
    names = args.methods.split(",")
    for corruption, rows in probe(args.images, corruption_names(args.corruptions), names, args.weights).items():
        print(f"\n{corruption}, Lite0, {args.images} validation crops\n")
        print("| method | severity 1 | 2 | 3 | 4 | 5 | mean |\n|---|---|---|---|---|---|---|")
        for m, accuracies in rows.items():
            print(f"| {m} | " + " | ".join(f"{a:.3f}" for a in accuracies) + f" | {np.mean(accuracies):.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
