"""Per-corruption accuracy of a corruption purifier on the validation object crops: what it changes, one line each.

Lite0's accuracy on the first ``--limit`` crops of ``imagenet-objects-val`` (labels: the consensus of Lite0 and
Lite2), each corrupted by every one of the 15 ImageNet-C corruptions at ``--severity``, without the purifier and
after it, and the mean absolute change it makes to the corrupted pixels. A purifier still at the identity changes
nothing and prints the same accuracy twice. Checks a stage-1 run of ``scripts/train_imagenet_realworld.sh``
between epochs, on validation data only.

    python scripts/expert_by_corruption.py --weights RUN/checkpoint.safetensors [--limit 48] [--severity 3]
        [--corruptions gaussian_noise,shot_noise,speckle_noise]

``--strength A --noise-range LOW,HIGH``: a residual purifier (a denoiser) applies only the share ``A`` of its
correction to images whose estimated noise level is at most LOW, rising to all of it at HIGH (what a routed
defense's ``corruption_strength`` and ``corruption_noise_range`` set for its corruption purifier).

``--corruptions``: any of the 15 and ImageNet-C's four validation corruptions (default: the 15), e.g. speckle noise
to see how a denoiser trained on Gaussian and shot noise carries over without touching the held-out four.

``--weights``: a defense (name, hub id or weights folder) or a training checkpoint (``checkpoint.safetensors``, its network
rebuilt from the config it saved). Minutes on a CPU (``--limit 48``: about one).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from torch import nn

from recondefense.arguments import corruption_list, number_pair, positive_int
from recondefense.classifiers import load_classifier
from recondefense.corruptions import CORRUPTIONS, corrupt
from recondefense.evaluate.tiers import object_test_set
from recondefense.purifier_config import PurifierConfig
from recondefense.purifiers import ResidualPurifier
from recondefense.train.setup import load_start


def by_corruption(
    purifier: nn.Module, limit: int, severity: int, corruptions: tuple[str, ...] = CORRUPTIONS
) -> list[dict]:
    """One row per corruption of ``corruptions`` (clean first): ``{"corruption", "none", "purified", "change"}``, accuracies in [0, 1],
    ``change`` the mean absolute pixel change the purifier makes."""
    data = object_test_set("val")
    count = min(limit, len(data))
    images = torch.stack([data[i][0] for i in range(count)])
    labels = torch.tensor([data[i][1] for i in range(count)])
    classifier = load_classifier("imagenet-efficientnet_lite0").eval()
    rows = []
    with torch.no_grad():
        for name in ("clean", *corruptions):
            generator = torch.Generator().manual_seed(0)  # the same noise draws on every run
            x = images if name == "clean" else corrupt(images, name, severity, generator=generator)
            purified = purifier(x)
            none, after = ((classifier(t).argmax(1) == labels).float().mean().item() for t in (x, purified))
            change = (purified - x).abs().mean().item()
            rows.append({"corruption": name, "none": none, "purified": after, "change": change})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", required=True, help="defense name or folder, or a training checkpoint.safetensors")
    parser.add_argument("--limit", type=positive_int, default=48, help="validation crops (the first ones)")
    parser.add_argument("--severity", type=int, default=3, choices=range(1, 6))
    parser.add_argument(
        "--corruptions", type=corruption_list, default=CORRUPTIONS, help="comma-separated (default: the 15)"
    )
    parser.add_argument("--strength", type=float, default=1.0, help="a residual purifier's share at low noise")
    parser.add_argument(
        "--noise-range", type=number_pair, default=(0.1, 0.3), help="LOW,HIGH: noise levels where the share rises to 1"
    )
    parser.add_argument("--json", default=None, help="also write the rows here")
    args = parser.parse_args(argv)
    bad = PurifierConfig(corruption_strength=args.strength, corruption_noise_range=args.noise_range).problem()
    if bad is not None:  # the routed config's own check of the same two settings
        flag = {"corruption_strength": "--strength", "corruption_noise_range": "--noise-range"}[bad[0]]
        parser.error(f"{flag} {getattr(args, flag[2:].replace('-', '_'))}: expected {bad[1]}")
    defense = load_start(args.weights).eval()
    if args.strength != 1.0:
        if not isinstance(defense.autoencoder, ResidualPurifier):
            parser.error(f"--strength: {args.weights} is not a residual purifier")
        defense.autoencoder.strength, defense.autoencoder.noise_range = args.strength, args.noise_range
    rows = by_corruption(defense, args.limit, args.severity, args.corruptions)
    low, high = args.noise_range
    share = "" if args.strength == 1.0 else f", strength {args.strength} up to noise {low}, all of it from {high}"
    print(f"Lite0 accuracy on {args.limit} validation object crops, severity {args.severity}{share}")
    print(f"{'corruption':18} {'none':>6} {'purified':>9} {'change':>8}")
    for row in rows:
        print(f"{row['corruption']:18} {row['none']:6.3f} {row['purified']:9.3f} {row['change']:8.4f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"weights": args.weights, "severity": args.severity, "rows": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
