"""Fine-tune the default ImageNet defense for your torchvision classifier on a folder of your own photos.

    python examples/finetune_python.py PHOTOS_FOLDER [--classifier torchvision:resnet50:IMAGENET1K_V2]
                                       [--epochs 2] [--out runs/finetuned]

The folder needs no labels or class sub-folders: the classifier's own clean predictions are what the
defense learns to preserve. Weights of the classifier come from torchvision's cache (downloaded once).
"""

from __future__ import annotations

import argparse

from recondefense.classifiers import pretrained_classifier
from recondefense.data import UnlabelledFolder
from recondefense.defense import DEFAULT_IMAGENET_WEIGHTS
from recondefense.train import TrainConfig, fit


def finetune(folder: str, classifier: str, epochs: int, out: str, size: int = 224, **settings) -> str:
    """The ten lines a user writes: classifier with its normalization, photos, fit, save. Returns the folder."""
    model, mean, std = pretrained_classifier(classifier)  # e.g. torchvision's weights enum gives mean/std
    photos = UnlabelledFolder(folder, "train", size=size)  # any nesting, no labels needed
    config = TrainConfig(epochs=epochs, warmup_epochs=0, guidance="kl", clean_weight=1.0, out=out, **settings)
    defense = fit(model, photos, mean=mean, std=std, defense=DEFAULT_IMAGENET_WEIGHTS, config=config)
    defense.save_pretrained(f"{out}/defense")  # load with ReconstructiveDefense.from_pretrained(...)
    return f"{out}/defense"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder")
    parser.add_argument("--classifier", default="torchvision:resnet50:IMAGENET1K_V2")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--out", default="runs/finetuned")
    args = parser.parse_args()
    print("saved", finetune(args.folder, args.classifier, args.epochs, args.out))


if __name__ == "__main__":
    main()
