"""Train the routed purifier's fog detector (:class:`~recondefense.haze.FogDetector`) on object photographs, or
with ``--corruption brightness`` its brightness detector (the same network).

Positives: crops of the train split's object photographs (:class:`~recondefense.data.ObjectCrops`) under
ImageNet-C fog (or ``--corruption``) at a random severity 1-5. Negatives, as many: the same kind of crops clean,
under contrast (fog's look-alike: a uniform blend toward the mean colour, which the routed purifier's stretch undoes
better than a dehaze)
or one of the other trained corruptions (never the four held out) at a random severity, or attacked by the paper's
PGD against Lite0 or Lite2 (a detector that reads an attack's traces as fog would pass attacked images past the
gate). Then, on the validation split's crops (never trained on): the share of each kind of image the detector reads
as foggy (probability above 0.5), and the largest probability on clean and attacked crops and the smallest on fogged
ones, what :func:`~recondefense.haze.fog_share`'s range is chosen from. Writes ``OUT/fog.safetensors`` (or
``OUT/<corruption>.safetensors``: the state dict; ``scripts/config_variant.py --fog`` (``--brightness``) puts it into
a routed defense) and ``OUT/validation.json``.
About 17 minutes on one CPU core (the PGD negatives are most of it).

    python scripts/train_fog_detector.py --out runs/fog [--corruption fog] [--images 4000] [--epochs 30] [--width 16]
        [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import nn

from recondefense.arguments import positive_int
from recondefense.attacks import PGD
from recondefense.budgets import HELD_OUT_CORRUPTIONS, IMAGENET
from recondefense.classifiers import load_classifier
from recondefense.corruptions import CORRUPTIONS, corrupt
from recondefense.data import ObjectCrops
from recondefense.evaluate.tiers import object_test_set
from recondefense.files import write_atomic
from recondefense.haze import DETECTOR_POOL, FogDetector

#: The trained corruptions a detector can be trained for (the held-out four never appear, as positives or negatives).
TRAINED = tuple(name for name in CORRUPTIONS if name not in HELD_OUT_CORRUPTIONS)
#: Images corrupted or attacked together (one corruption and severity per chunk).
CHUNK = 25


#: The classifiers whose PGD gives the attacked negatives (Lite1, the unseen one, never).
ATTACKED = ("imagenet-efficientnet_lite0", "imagenet-efficientnet_lite2")


def attacked(images: torch.Tensor, classifier: nn.Module) -> torch.Tensor:
    """The paper's PGD against ``classifier``'s own predictions: ``(N, C, H, W)`` in [0, 1] -> same."""
    with torch.no_grad():
        labels = classifier(images).argmax(1)
    return PGD(classifier, **IMAGENET.pgd)(images, labels)


def others(target: str) -> tuple[str, ...]:
    """The trained corruptions other than ``target``: the detector's corrupted negatives."""
    return tuple(name for name in TRAINED if name != target)


def labelled_images(
    images: torch.Tensor, generator: torch.Generator, classifiers: list[nn.Module], target: str = "fog"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each chunk of ``images`` under ``target`` (label 1, half the chunks), or clean, under contrast, under another
    trained corruption or attacked by PGD against one of ``classifiers`` in turn (label 0, an eighth of the chunks each):
    ``(N, C, H, W)`` -> that and ``(N,)`` labels in {0, 1}."""
    chunks, labels = [], []
    attacks, negatives = 0, others(target)
    for start in range(0, len(images), CHUNK):
        chunk = images[start : start + CHUNK]
        severity = int(torch.randint(1, 6, (), generator=generator))
        kind = int(torch.randint(0, 8, (), generator=generator))
        if kind < 4:
            chunk = corrupt(chunk, target, severity, generator=generator)
        elif kind in (5, 6):
            name = "contrast" if kind == 5 else negatives[int(torch.randint(len(negatives), (), generator=generator))]
            chunk = corrupt(chunk, name, severity, generator=generator)
        elif kind == 7:
            chunk = attacked(chunk, classifiers[attacks % len(classifiers)])
            attacks += 1
        chunks.append(chunk)
        labels.append(torch.full((len(chunk),), float(kind < 4)))
    return torch.cat(chunks), torch.cat(labels)


def train(images: torch.Tensor, labels: torch.Tensor, width: int, epochs: int, seed: int, pool: int = 4) -> FogDetector:
    """A :class:`FogDetector` of ``width`` reading at ``pool``, trained with the binary cross-entropy, Adam at 3e-3,
    batches of 64."""
    torch.manual_seed(seed)
    detector = FogDetector(images.shape[1], width, pool)
    optimizer = torch.optim.Adam(detector.parameters(), lr=3e-3)
    for epoch in range(epochs):
        order = torch.randperm(len(images))
        total = 0.0
        for start in range(0, len(images), 64):
            index = order[start : start + 64]
            loss = F.binary_cross_entropy_with_logits(detector(images[index]), labels[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(index)
        print(f"epoch {epoch + 1}/{epochs}: loss {total / len(images):.4f}", flush=True)
    return detector.eval()


def validate(
    detector: FogDetector, seed: int, classifiers: dict[str, nn.Module], target: str = "fog"
) -> dict[str, float]:
    """On the validation crops: the share read as ``target`` (probability above 0.5) by kind of image: clean, under
    ``target`` at each severity, under each other trained corruption at severities 3 and 5 (contrast also 1),
    attacked by PGD against each of ``classifiers``; the largest probability on clean and attacked crops, the
    smallest on ``target``'s."""
    data = object_test_set("val")
    clean = torch.stack([data[i][0] for i in range(len(data))])
    generator = torch.Generator().manual_seed(seed + 1)
    rows: dict[str, float] = {}

    def read(kind: str, images: torch.Tensor, extreme: str | None = None) -> None:
        with torch.no_grad():
            probability = torch.cat([torch.sigmoid(detector(images[i : i + 64])) for i in range(0, len(images), 64)])
        rows[kind] = (probability > 0.5).float().mean().item()
        if extreme == "largest":
            rows[f"{kind}, largest probability"] = probability.max().item()
        elif extreme == "smallest":
            rows[f"{kind}, smallest probability"] = probability.min().item()

    read("clean", clean, "largest")
    for severity in range(1, 6):
        read(f"{target}@{severity}", corrupt(clean, target, severity, generator=generator), "smallest")
    for name in others(target):
        for severity in (1, 3, 5) if name == "contrast" else (3, 5):
            read(f"{name}@{severity}", corrupt(clean, name, severity, generator=generator))
    for name, classifier in classifiers.items():
        images = torch.cat([attacked(clean[i : i + CHUNK], classifier) for i in range(0, len(clean), CHUNK)])
        read(f"pgd {name}", images, "largest")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, type=Path, help="folder for the detector and validation.json")
    parser.add_argument("--corruption", default="fog", choices=TRAINED, help="what the detector reads")
    parser.add_argument("--images", type=positive_int, default=4000, help="training crops")
    parser.add_argument("--epochs", type=positive_int, default=30)
    parser.add_argument("--width", type=positive_int, default=16, help="the detector's first layer's channels")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    started = time.time()
    crops = ObjectCrops("train", length=args.images, seed=args.seed)
    images = torch.stack([crops[i][0] for i in range(len(crops))])
    classifiers = {name: load_classifier(name).eval() for name in ATTACKED}
    generator = torch.Generator().manual_seed(args.seed)
    images, labels = labelled_images(images, generator, list(classifiers.values()), args.corruption)
    print(
        f"{len(images)} training crops ({int(labels.sum())} under {args.corruption}) in {time.time() - started:.0f} s",
        flush=True,
    )
    pool = DETECTOR_POOL.get(args.corruption, 4)
    detector = train(images, labels, args.width, args.epochs, args.seed, pool)
    rows = validate(detector, args.seed, classifiers, args.corruption)
    for kind, share in rows.items():
        print(f"{kind:28} {share:.3f}")
    args.out.mkdir(parents=True, exist_ok=True)
    save_file(
        {k: v.contiguous() for k, v in detector.state_dict().items()}, str(args.out / f"{args.corruption}.safetensors")
    )
    command = "python scripts/train_fog_detector.py " + " ".join(sys.argv[1:] if argv is None else argv)
    report = {"command": command, "width": args.width, "validation": rows}
    write_atomic(args.out / "validation.json", (json.dumps(report, indent=1) + "\n").encode())
    print(f"wrote {args.out} in {time.time() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
