"""Which images a brightness veto shuts the gate on, and whether the share of clipped pixels tells brightened
photos from attacked ones.

ImageNet-C's brightness raises every pixel's HSV value by 0.1-0.5 and clips it at 1, so a brightened photo has many
pixels at full value; an attack moves pixels by a few grey levels, and about half of those a photo had at full value
move down. The veto of ``-routed12-`` (``brightness_veto`` 0.05, ``veto_black_point`` 0.15) shut the gate on some
attacked photos that are bright by nature (design notes, sixteenth session). This probe reads, on validation object
crops, clean, brightened at severities 1-5 and attacked (the object tier's FGSM and PGD against Lite0, PGD against
Lite2; the training classifiers, Lite1 never), per image: whether the gate opens without the veto, whether the veto
lowers its logit at all (``lowered``: the routes' mixture and the strong AE's share move with it, even where the
gate stays open) and whether it shuts it, and the share of clipped pixels (HSV value within half a grey level of 1,
:func:`clipped_share`). For each threshold ``T`` it prints how many of the opened images a veto restricted to images
with a clipped share of at least ``T`` would shut and lower (``shut/lowered``), for each veto of ``--veto``.

    python scripts/veto_probe.py [--images 128] [--weights NAME] [--veto 0.02,0.05]

About 1.5 s an image on 2 cores (three attacks).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from functools import partial

import torch

from recondefense import ReconstructiveDefense
from recondefense.classifiers import load_classifier
from recondefense.corruptions import corrupt
from recondefense.data.objects import ObjectCrops
from recondefense.defense import DEFAULT_IMAGENET_WEIGHTS
from recondefense.evaluate.run import build_attack, run_attack
from recondefense.evaluate.tiers import TIERS
from recondefense.levels import clipped_share

THRESHOLDS = (0.0, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1)
CHUNK = 32  #: images attacked or read at once (231 crops attacked at once need 19 GB)


def in_chunks(fn: Callable[..., torch.Tensor], *tensors: torch.Tensor) -> torch.Tensor:
    """``fn`` applied to :data:`CHUNK` images of ``tensors`` at a time, the results concatenated along dim 0."""
    n = len(tensors[0])
    return torch.cat([fn(*(t[i : i + CHUNK] for t in tensors)) for i in range(0, n, CHUNK)])


def image_sets(images: int) -> dict[str, torch.Tensor]:
    """The first ``images`` validation object crops, clean, brightened at severities 1-5 (seeded) and attacked."""
    crops = ObjectCrops("val", length=images)
    x = torch.stack([crops[i][0] for i in range(images)])
    sets = {"clean": x}
    for severity in range(1, 6):
        sets[f"brightness@{severity}"] = corrupt(x, "brightness", severity, generator=torch.Generator().manual_seed(0))
    tier = TIERS["imagenet-objects"]
    for attack, name in (
        ("fgsm", "imagenet-efficientnet_lite0"),
        ("pgd", "imagenet-efficientnet_lite0"),
        ("pgd", "imagenet-efficientnet_lite2"),
    ):
        classifier = load_classifier(name).eval()
        with torch.no_grad():
            labels = classifier(x).argmax(1)
        sets[f"{attack} {name[-5:]}"] = in_chunks(
            partial(run_attack, build_attack(attack, classifier, tier)), x, labels
        )
    return sets


@torch.no_grad()
def gate_logits(net: torch.nn.Module, images: torch.Tensor, veto: float, black_point: float) -> torch.Tensor:
    """``net``'s gate logits of prepared ``images`` (``(N,)``) under a brightness veto of ``veto`` (0: none)."""
    net.brightness_veto, net.veto_black_point, net.veto_clipped = veto, black_point, 0.0
    return in_chunks(net.gate_logit, images)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", default=DEFAULT_IMAGENET_WEIGHTS, help="routed weights")
    parser.add_argument("--images", type=int, default=128)
    parser.add_argument(
        "--veto",
        type=lambda v: [float(f) for f in v.split(",")],
        default=[0.05],
        help="brightness_veto(s), comma-separated",
    )
    parser.add_argument("--black-point", type=float, default=0.15, help="veto_black_point of the probed veto")
    args = parser.parse_args(argv)
    net = ReconstructiveDefense.from_pretrained(args.weights).autoencoder.eval()
    readings = {}  # per image set, once for every veto: the prepared images, the gate logit without a veto, the share
    for key, images in image_sets(args.images).items():
        with torch.no_grad():
            prepared = in_chunks(net.prepare, images)
        readings[key] = (prepared, gate_logits(net, prepared, 0.0, args.black_point), clipped_share(prepared))
    header = f"{'images':18} {'open':>5} " + " ".join(f"{f'T={t}':>9}" for t in THRESHOLDS)
    for veto in args.veto:
        print(f"\nvetoed/lowered by a veto of {veto} from black point {args.black_point}, on clipped share >= T")
        print(header)
        for key, (prepared, first, share) in readings.items():
            second = gate_logits(net, prepared, veto, args.black_point)
            opened = first > 0
            lowered, vetoed = opened & (second < first - 1e-4), opened & (second <= 0)
            counts = " ".join(
                f"{f'{int((vetoed & (share >= t)).sum())}/{int((lowered & (share >= t)).sum())}':>9}"
                for t in THRESHOLDS
            )
            print(f"{key:18} {int(opened.sum()):>5} {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
