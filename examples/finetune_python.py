"""Fine-tune the default ImageNet defense for your torchvision classifier on a folder of your own photos.

    python examples/finetune_python.py PHOTOS_FOLDER [--classifier torchvision:resnet50:IMAGENET1K_V2]
                                       [--epochs 2] [--out runs/finetuned]

The folder needs no labels or class sub-folders: the classifier's own clean predictions are what the
defense learns to preserve. Weights of the classifier come from torchvision's cache (downloaded once).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from recondefense.arguments import positive_int
from recondefense.classifiers import pretrained_classifier
from recondefense.data import UnlabelledFolder
from recondefense.defense import DEFAULT_IMAGENET_WEIGHTS
from recondefense.files import output_problem
from recondefense.train import TrainConfig, fit


def finetune(folder: str, classifier: str, epochs: int, out: str, size: int = 224, **settings) -> str:
    """The ten lines a user writes: classifier with its normalization, photos, fit, save. Returns the folder."""
    photos = UnlabelledFolder(folder, "train", size=size)  # any nesting, no labels needed (checked first: cheap)
    model, mean, std = pretrained_classifier(classifier)  # e.g. torchvision's weights enum gives mean/std
    config = TrainConfig(epochs=epochs, warmup_epochs=0, guidance="kl", clean_weight=1.0, out=out, **settings)
    defense = fit(model, photos, mean=mean, std=std, defense=DEFAULT_IMAGENET_WEIGHTS, config=config)
    defense.save_pretrained(f"{out}/defense")  # load with ReconstructiveDefense.from_pretrained(...)
    return f"{out}/defense"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", help="folder of your photos (JPEG, PNG, ...; any nesting, no labels needed)")
    parser.add_argument(
        "--classifier",
        default="torchvision:resnet50:IMAGENET1K_V2",
        help="the classifier to defend: torchvision:<arch>:<WEIGHTS>, timm:<name> or a recondefense name such as "
        "imagenet-efficientnet_lite0 (default: %(default)s)",
    )
    parser.add_argument("--epochs", type=positive_int, default=2, help="passes over the photos (default: %(default)s)")
    parser.add_argument(
        "--out",
        default="runs/finetuned",
        help="run folder (checkpoints, metrics); the defense is saved in OUT/defense (default: %(default)s)",
    )
    args = parser.parse_args()
    # Checked before the classifier loads (it may download): the photos folder, then the output folder.
    if not Path(args.folder).is_dir():
        parser.error(f"folder {args.folder}: not an existing folder (pass a folder of photos, any nesting)")
    problem = output_problem("--out", Path(args.out), folder=True)
    if problem is not None:
        parser.error(problem)
    print("saved", finetune(args.folder, args.classifier, args.epochs, args.out))


if __name__ == "__main__":
    main()
