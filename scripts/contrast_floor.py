"""Choose the contrast stretch (and the black point) of a routed default on validation: Lite0's accuracy on
washed-out, brightened and other corrupted validation crops, without and with
:func:`~recondefense.levels.restore_contrast` (and :func:`~recondefense.levels.restore_black_point`) at each setting.

For the first ``--limit`` crops of ``imagenet-objects-val`` (labels: the consensus of Lite0 and Lite2), clean, every
ImageNet-C corruption but glass blur (the slowest; it barely changes an image's contrast) at severities 1-5, and
natural look-alikes a stretch must not hurt (the crops under- and overexposed: dim photos are low in contrast too),
it prints per setting ``floor/target`` the accuracy after the stretch and the share of images it changed (gain above
1), and the lowest contrasts of all clean validation crops. The stretch alone, in front of the classifier: what it
adds to a routed purifier that passes those images through.

    python scripts/contrast_floor.py [--limit 96] [--json results/imagenet/contrast-floor-val.json]

About 40 minutes on one CPU core. ``--black-points F1,F2,...`` compares instead the stretch at ``--floor`` /
``--target`` alone (row key ``"stretch"``) with the stretch followed by the black point lowered on images whose
black point is at least each ``F`` (keys ``"black>=F"``), on the ``--corruptions`` named (default: all but glass
blur); with ``--unsure N`` it counts, per ``F``, the unsure crops lowered and the predictions that change.
``--unsure N --floor F --target T`` asks instead where one setting changes
Lite0's prediction on crops it is unsure of, as on the held-out crops: the first N validation crops of the training
photos (``load_dataset("photos", "val")``'s crops, unlabelled), as they are and under- and overexposed; per
smallest gain applied (a stretch of a lower gain skipped), how many are stretched and how many predictions change.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import torch

from recondefense.classifiers import load_classifier
from recondefense.corruptions import CORRUPTIONS, corrupt, corruption_names
from recondefense.data import PhotoCrops, training_photo_paths
from recondefense.evaluate.tiers import object_test_set
from recondefense.levels import black_point, contrast_gain, contrast_spread, restore_black_point, restore_contrast

#: The settings compared, ``(floor, target)``; target 1: as far as the image's own range allows.
SETTINGS = ((0.08, 0.2), (0.10, 0.2), (0.10, 1.0), (0.12, 1.0), (0.15, 1.0), (0.20, 1.0))

#: Natural look-alikes: ``name -> (N, C, H, W) -> same``, exposure scaled in sRGB (a dim photo is dark, not grey).
EXPOSURES = {
    f"{kind}{factor}": (lambda x, f=factor: x * f) if kind == "underexposed" else (lambda x, f=factor: 1 - (1 - x) * f)
    for kind in ("underexposed", "overexposed")
    for factor in (0.2, 0.35, 0.5)
}


#: A setting: ``(changes, restore)``, which images of a batch it changes (``(N,)`` bool) and what it makes of them.
Setting = tuple[Callable[[torch.Tensor], torch.Tensor], Callable[[torch.Tensor], torch.Tensor]]


def stretch_settings() -> dict[str, Setting]:
    """The contrast stretches of :data:`SETTINGS`, keyed ``"floor/target"``."""
    return {
        f"{floor}/{target}": (
            lambda x, f=floor, t=target: contrast_gain(x, f, t) > 1,
            lambda x, f=floor, t=target: restore_contrast(x, f, t),
        )
        for floor, target in SETTINGS
    }


def black_point_settings(floors: list[float], floor: float, target: float) -> dict[str, Setting]:
    """The stretch ``floor`` / ``target`` alone (``"stretch"``), then followed by the black point lowered from each of
    ``floors`` (``"black>=F"``)."""

    def stretched(x: torch.Tensor) -> torch.Tensor:
        return restore_contrast(x, floor, target)

    settings = {"stretch": (lambda x: contrast_gain(x, floor, target) > 1, stretched)}
    for black in floors:
        settings[f"black>={black}"] = (
            lambda x, b=black: (contrast_gain(x, floor, target) > 1) | (black_point(stretched(x)) >= b),
            lambda x, b=black: restore_black_point(stretched(x), b),
        )
    return settings


def sweep(limit: int, settings: dict[str, Setting], corruptions: list[str]) -> dict:
    """``{"clean_contrast": lowest contrasts of all clean val crops, "clean_black_point": highest black points,
    "rows": {input: {"none": accuracy, setting: [accuracy, share changed]}}}``, accuracies in [0, 1]; inputs
    ``"clean"``, the :data:`EXPOSURES` and ``"corruption@severity"`` for ``corruptions``."""
    data = object_test_set("val")
    everything = torch.stack([data[i][0] for i in range(len(data))])
    count = min(limit, len(data))
    images, labels = everything[:count], torch.tensor([data[i][1] for i in range(count)])
    classifier = load_classifier("imagenet-efficientnet_lite0").eval()
    rows = {}
    with torch.no_grad():

        def predict(x: torch.Tensor) -> torch.Tensor:
            return torch.cat([classifier(x[i : i + 32]).argmax(1) for i in range(0, len(x), 32)])

        def accuracy(predictions: torch.Tensor) -> float:
            return round((predictions == labels).float().mean().item(), 3)

        def inputs():  # (row name, images)
            yield "clean", images
            for name, expose in EXPOSURES.items():
                yield name, expose(images)
            for name in corruptions:
                for severity in range(1, 6):
                    yield (
                        f"{name}@{severity}",
                        corrupt(images, name, severity, generator=torch.Generator().manual_seed(0)),
                    )

        for name, x in inputs():
            plain = predict(x)
            row = {"none": accuracy(plain)}
            for key, (changes, restore) in settings.items():
                changed = changes(x).nonzero().flatten()
                after = plain.clone()  # only the changed images can change: only they are classified again
                if len(changed):
                    after[changed] = predict(restore(x[changed]))
                row[key] = [accuracy(after), round(len(changed) / len(x), 3)]
            rows[name] = row
            print(name, json.dumps(row), flush=True)
    lowest = torch.sort(contrast_spread(everything)).values[:5]
    highest = torch.sort(black_point(everything), descending=True).values[:5]
    return {
        "n": count,
        "clean_crops": len(data),
        "clean_contrast": [round(v, 4) for v in lowest.tolist()],
        "clean_black_point": [round(v, 4) for v in highest.tolist()],
        "rows": rows,
    }


#: The smallest gains :func:`unsure_flips` tries.
MIN_GAINS = (1.0, 1.1, 1.25, 1.5, 2.0)


def unsure_inputs(count: int) -> tuple[list[tuple[str, torch.Tensor]], torch.nn.Module]:
    """The first ``count`` val crops of the training photos (unlabelled, as unsure as the held-out crops), as they
    are (``"clean"``) and as each of :data:`EXPOSURES`, each ``(count, 3, H, W)``; and Lite0 in eval mode."""
    crops = PhotoCrops(training_photo_paths(), count, seed=1)  # the photos' val split (seed 1)
    images = torch.stack([crops[i][0] for i in range(count)])
    inputs = [("clean", images), *((name, expose(images)) for name, expose in EXPOSURES.items())]
    return inputs, load_classifier("imagenet-efficientnet_lite0").eval()


def unsure_flips(count: int, floor: float, target: float) -> dict:
    """``{input: {"stretched": n, "min_gain": {g: [stretched, changed]}}}`` for :func:`unsure_inputs`;
    "changed": Lite0's top-1 after the stretch differs."""
    inputs, classifier = unsure_inputs(count)
    result = {}
    with torch.no_grad():
        for name, x in inputs:
            gain = contrast_gain(x, floor, target)
            stretched = (gain > 1).nonzero().flatten()
            changed = torch.zeros(0, dtype=torch.bool)
            if len(stretched):
                before = classifier(x[stretched]).argmax(1)
                changed = classifier(restore_contrast(x[stretched], floor, target)).argmax(1) != before
            gains = gain[stretched]
            result[name] = {
                "n": count,
                "min_gain": {g: [int((gains >= g).sum()), int((changed & (gains >= g)).sum())] for g in MIN_GAINS},
            }
            print(name, json.dumps(result[name]), flush=True)
    return {"floor": floor, "target": target, "unsure": result}


def unsure_black_points(count: int, settings: dict[str, Setting]) -> dict:
    """``{input: {setting: [changed, predictions changed]}}`` for :func:`unsure_inputs`."""
    inputs, classifier = unsure_inputs(count)
    result = {}
    with torch.no_grad():
        for name, x in inputs:
            before = classifier(x).argmax(1)
            row = {"n": count}
            for key, (changes, restore) in settings.items():
                changed = changes(x)
                flipped = changed & (classifier(restore(x)).argmax(1) != before)
                row[key] = [int(changed.sum()), int(flipped.sum())]
            result[name] = row
            print(name, json.dumps(row), flush=True)
    return {"unsure": result}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=96, help="validation crops (the first ones)")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    parser.add_argument("--unsure", type=int, help="instead: this many unsure photo val crops, one setting")
    parser.add_argument("--floor", type=float, default=0.10, help="--unsure's contrast floor")
    parser.add_argument("--target", type=float, default=1.0, help="--unsure's contrast target")
    parser.add_argument("--black-points", help="instead: these black-point floors after the stretch (comma-separated)")
    parser.add_argument("--corruptions", help="the corruptions swept (comma-separated; default: all but glass blur)")
    args = parser.parse_args(argv)
    try:
        corruptions = corruption_names(args.corruptions, CORRUPTIONS) or [c for c in CORRUPTIONS if c != "glass_blur"]
    except ValueError as err:
        parser.error(f"--corruptions: {err}")
    for flag, value in (("--limit", args.limit), ("--unsure", args.unsure)):
        if value is not None and value < 1:
            parser.error(f"{flag} {value}: expected a positive number of crops")
    torch.set_num_threads(1)
    if args.black_points:
        floors = [float(f) for f in args.black_points.split(",")]
        settings = black_point_settings(floors, args.floor, args.target)
        if args.unsure:
            result = {"floor": args.floor, "target": args.target, **unsure_black_points(args.unsure, settings)}
        else:
            result = sweep(args.limit, settings, corruptions)
            print(f"highest black points of the {result['clean_crops']} clean val crops: {result['clean_black_point']}")
    elif args.unsure:
        result = unsure_flips(args.unsure, args.floor, args.target)
    else:
        result = sweep(args.limit, stretch_settings(), corruptions)
        print(f"lowest contrasts of the {result['clean_crops']} clean val crops: {result['clean_contrast']}")
    if args.json:
        command = "python scripts/contrast_floor.py " + " ".join(sys.argv[1:] if argv is None else argv)
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"command": command, **result}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
