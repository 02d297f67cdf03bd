"""Train the routed purifier's fog detector (:class:`~recondefense.haze.FogDetector`) on object photographs.

Positives: crops of the train split's object photographs (:class:`~recondefense.data.ObjectCrops`) under
ImageNet-C fog at a random severity 1-5. Negatives, as many: the same kind of crops clean, under one of the other
trained corruptions (never the four held out) at a random severity, or with a random-sign perturbation of the
ImageNet attack budget (what an attack leaves, roughly). Then, on the validation split's crops (never trained on):
the share each kind of image the detector reads as foggy (probability above 0.5; the quartiles of it on clean
crops), what :func:`~recondefense.haze.fog_share` would choose its range from. Writes ``OUT/fog.safetensors`` (the
state dict; ``scripts/config_variant.py --fog`` puts it into a routed defense) and ``OUT/validation.json``.
A few minutes on one CPU core.

    python scripts/train_fog_detector.py --out runs/fog [--images 4000] [--epochs 30] [--width 16] [--seed 0]
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

from recondefense.arguments import positive_int
from recondefense.budgets import HELD_OUT_CORRUPTIONS, IMAGENET
from recondefense.corruptions import CORRUPTIONS, corrupt
from recondefense.data import ObjectCrops
from recondefense.evaluate.tiers import object_test_set
from recondefense.files import write_atomic
from recondefense.haze import FogDetector

#: The trained corruptions other than fog: the detector's corrupted negatives (the held-out four never appear).
OTHERS = tuple(name for name in CORRUPTIONS if name != "fog" and name not in HELD_OUT_CORRUPTIONS)
#: Images corrupted or perturbed together (one corruption and severity per chunk).
CHUNK = 25


def perturbed(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A random-sign perturbation of the ImageNet attack budget: ``(N, C, H, W)`` in [0, 1] -> same."""
    signs = torch.randint(0, 2, images.shape, generator=generator).float() * 2 - 1
    return (images + IMAGENET.eps * signs).clamp(0, 1)


def labelled_images(images: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Each chunk of ``images`` fogged (label 1, half the chunks), or clean, corrupted otherwise or perturbed
    (label 0): ``(N, C, H, W)`` -> that and ``(N,)`` labels in {0, 1}."""
    chunks, labels = [], []
    for start in range(0, len(images), CHUNK):
        chunk = images[start : start + CHUNK]
        severity = int(torch.randint(1, 6, (), generator=generator))
        kind = int(torch.randint(0, 6, (), generator=generator))
        if kind < 3:
            chunk = corrupt(chunk, "fog", severity, generator=generator)
        elif kind == 4:
            name = OTHERS[int(torch.randint(len(OTHERS), (), generator=generator))]
            chunk = corrupt(chunk, name, severity, generator=generator)
        elif kind == 5:
            chunk = perturbed(chunk, generator)
        chunks.append(chunk)
        labels.append(torch.full((len(chunk),), float(kind < 3)))
    return torch.cat(chunks), torch.cat(labels)


def train(images: torch.Tensor, labels: torch.Tensor, width: int, epochs: int, seed: int) -> FogDetector:
    """A :class:`FogDetector` of ``width`` trained with the binary cross-entropy, Adam at 3e-3, batches of 64."""
    torch.manual_seed(seed)
    detector = FogDetector(images.shape[1], width)
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


@torch.no_grad()
def validate(detector: FogDetector, seed: int) -> dict[str, float]:
    """The share of the validation crops read as foggy, by kind of image: clean, fogged at each severity, under
    each other trained corruption at severities 3 and 5, perturbed; and the clean crops' largest probability."""
    data = object_test_set("val")
    clean = torch.stack([data[i][0] for i in range(len(data))])
    generator = torch.Generator().manual_seed(seed + 1)

    def probability(images: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(detector(images))

    rows = {"clean": (probability(clean) > 0.5).float().mean().item()}
    rows["clean, largest probability"] = probability(clean).max().item()
    for severity in range(1, 6):
        rows[f"fog@{severity}"] = (
            (probability(corrupt(clean, "fog", severity, generator=generator)) > 0.5).float().mean().item()
        )
    for name in OTHERS:
        for severity in (3, 5):
            images = corrupt(clean, name, severity, generator=generator)
            rows[f"{name}@{severity}"] = (probability(images) > 0.5).float().mean().item()
    rows["perturbed"] = (probability(perturbed(clean, generator)) > 0.5).float().mean().item()
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, type=Path, help="folder for fog.safetensors and validation.json")
    parser.add_argument("--images", type=positive_int, default=4000, help="training crops")
    parser.add_argument("--epochs", type=positive_int, default=30)
    parser.add_argument("--width", type=positive_int, default=16, help="the detector's first layer's channels")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    started = time.time()
    crops = ObjectCrops("train", length=args.images, seed=args.seed)
    images = torch.stack([crops[i][0] for i in range(len(crops))])
    images, labels = labelled_images(images, torch.Generator().manual_seed(args.seed))
    print(f"{len(images)} training crops ({int(labels.sum())} fogged) in {time.time() - started:.0f} s", flush=True)
    detector = train(images, labels, args.width, args.epochs, args.seed)
    rows = validate(detector, args.seed)
    for kind, share in rows.items():
        print(f"{kind:28} {share:.3f}")
    args.out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in detector.state_dict().items()}, str(args.out / "fog.safetensors"))
    command = "python scripts/train_fog_detector.py " + " ".join(sys.argv[1:] if argv is None else argv)
    report = {"command": command, "width": args.width, "validation": rows}
    write_atomic(args.out / "validation.json", (json.dumps(report, indent=1) + "\n").encode())
    print(f"wrote {args.out} in {time.time() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
