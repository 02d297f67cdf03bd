"""Choose the contrast stretch of a routed default on validation: Lite0's accuracy on washed-out and other
corrupted validation crops, without and with :func:`~recondefense.routing.restore_contrast` at each setting.

For the first ``--limit`` crops of ``imagenet-objects-val`` (labels: the consensus of Lite0 and Lite2), every
ImageNet-C corruption but glass blur (the slowest; it barely changes an image's contrast) at severities 1-5, it
prints per setting ``floor/target`` the accuracy after the stretch and the share of images it stretched, and the
lowest contrasts of all clean validation crops (a floor must stay below them: clean images are to pass untouched).
The stretch alone, in front of the classifier: what it adds to a routed purifier that passes those images through.

    python scripts/contrast_floor.py [--limit 96] [--json results/imagenet/contrast-floor-val.json]

About 35 minutes on one CPU core.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from recondefense.classifiers import load_classifier
from recondefense.corruptions import CORRUPTIONS, corrupt
from recondefense.evaluate.tiers import object_test_set
from recondefense.routing import contrast_spread, restore_contrast

#: The settings compared, ``(floor, target)``.
SETTINGS = ((0.06, 0.06), (0.08, 0.08), (0.10, 0.10), (0.06, 0.15), (0.08, 0.15), (0.10, 0.15), (0.08, 0.2))


def sweep(limit: int) -> dict:
    """``{"clean_contrast": lowest contrasts of all clean val crops, "rows": {"name@severity": {"none": accuracy,
    "floor/target": [accuracy, share stretched]}}}``, accuracies in [0, 1]."""
    data = object_test_set("val")
    everything = torch.stack([data[i][0] for i in range(len(data))])
    count = min(limit, len(data))
    images, labels = everything[:count], torch.tensor([data[i][1] for i in range(count)])
    classifier = load_classifier("imagenet-efficientnet_lite0").eval()
    rows = {}
    with torch.no_grad():

        def accuracy(x: torch.Tensor) -> float:
            return round((classifier(x).argmax(1) == labels).float().mean().item(), 3)

        for name in ("clean", *(c for c in CORRUPTIONS if c != "glass_blur")):
            for severity in (0,) if name == "clean" else range(1, 6):
                generator = torch.Generator().manual_seed(0)
                x = images if name == "clean" else corrupt(images, name, severity, generator=generator)
                low = contrast_spread(x)
                row = {"none": accuracy(x)}
                for floor, target in SETTINGS:
                    share = (low < floor).float().mean().item()
                    after = accuracy(restore_contrast(x, floor, target)) if share > 0 else row["none"]
                    row[f"{floor}/{target}"] = [after, round(share, 3)]
                rows[f"{name}@{severity}"] = row
                print(name, severity, json.dumps(row), flush=True)
    lowest = torch.sort(contrast_spread(everything)).values[:5]
    return {
        "n": count,
        "clean_crops": len(data),
        "clean_contrast": [round(v, 4) for v in lowest.tolist()],
        "rows": rows,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=96, help="validation crops (the first ones)")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args(argv)
    if args.limit < 1:
        parser.error(f"--limit {args.limit}: expected a positive number of crops")
    torch.set_num_threads(1)
    result = sweep(args.limit)
    print(f"lowest contrasts of the {result['clean_crops']} clean val crops: {result['clean_contrast']}")
    if args.json:
        command = "python scripts/contrast_floor.py " + " ".join(sys.argv[1:] if argv is None else argv)
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"command": command, **result}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
