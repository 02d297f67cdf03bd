"""Train the Fashion-MNIST target classifiers that ship with the package.

``python -m recondefense.train.classifier --arch smallcnn --out weights/classifiers/fashionmnist-smallcnn``

Recipe: Adam (lr 1e-3, cosine to 0), batch 128, random 2-pixel shifts and horizontal flips, on the
55,000-image training split; the epoch with the best accuracy on the 5,000-image validation split is
kept. Test accuracy is measured once at the end, for the model card only.

``--noise-sigma s`` trains with Gaussian noise augmentation, ``clamp(x + N(0, s^2), 0, 1)`` on every training
image (Cohen et al., ICML 2019): the classifier randomized smoothing certifies best, the reference that a
denoiser in front of an unchanged classifier is compared with (validation and test accuracy are then measured
on noisy images too).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import safetensors.torch
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ..classifiers import FASHION_MNIST_MEAN, FASHION_MNIST_STD, FashionResNet, Normalized, SmallCNN
from ..data import fashion_mnist

ARCHITECTURES = {"smallcnn": SmallCNN, "resnet8": FashionResNet}
logger = logging.getLogger(__name__)


def _stack(dataset) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = zip(*(dataset[i] for i in range(len(dataset))))
    return torch.stack(images), torch.as_tensor(labels)


def _noisy(x: torch.Tensor, sigma: float, generator: torch.Generator) -> torch.Tensor:
    """``clamp(x + N(0, sigma^2), 0, 1)``, the noise model of :mod:`recondefense.certify` (``x`` itself at 0)."""
    if sigma == 0:
        return x
    return (x + sigma * torch.randn(x.shape, generator=generator)).clamp(0, 1)


@torch.no_grad()
def accuracy(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 1000, noise_sigma: float = 0.0
) -> float:
    """Top-1 accuracy of a pixel-space ``model`` on ``images`` (N, C, H, W) in [0, 1], under Gaussian noise of
    ``noise_sigma`` (one seeded draw per image) when it is positive."""
    model.eval()
    gen = torch.Generator().manual_seed(1234)
    correct = sum(
        (model(_noisy(images[i : i + batch_size], noise_sigma, gen)).argmax(1) == labels[i : i + batch_size])
        .sum()
        .item()
        for i in range(0, len(labels), batch_size)
    )
    return correct / len(labels)


def train_classifier(
    arch: str, epochs: int = 8, batch_size: int = 128, lr: float = 1e-3, seed: int = 0, noise_sigma: float = 0.0
) -> tuple[nn.Module, dict]:
    """Train ``arch`` on the Fashion-MNIST training split (with Gaussian noise augmentation of ``noise_sigma``
    when positive); returns the best-on-validation model and its metrics."""
    if noise_sigma < 0:
        raise ValueError(f"noise_sigma must be >= 0, got {noise_sigma}")
    torch.manual_seed(seed)
    net = ARCHITECTURES[arch]()
    model = Normalized(net, FASHION_MNIST_MEAN, FASHION_MNIST_STD)
    train_x, train_y = _stack(fashion_mnist("train"))
    val_x, val_y = _stack(fashion_mnist("val"))
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    steps = epochs * ((len(train_y) + batch_size - 1) // batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    best, best_state, history = -1.0, None, []
    gen = torch.Generator().manual_seed(seed)
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(train_y), generator=gen)
        bar = tqdm(range(0, len(order), batch_size), desc=f"{arch} epoch {epoch + 1}/{epochs}", leave=False)
        for start in bar:
            idx = order[start : start + batch_size]
            x = train_x[idx]
            flip = torch.rand(len(idx), generator=gen) < 0.5
            x = torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)
            dx, dy = torch.randint(-2, 3, (2,), generator=gen).tolist()
            x = torch.roll(F.pad(x, (2, 2, 2, 2)), (dy, dx), (2, 3))[..., 2:-2, 2:-2]
            x = _noisy(x, noise_sigma, gen)
            loss = F.cross_entropy(model(x), train_y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            bar.set_postfix(loss=f"{loss.item():.3f}")
        val_acc = accuracy(model, val_x, val_y, noise_sigma=noise_sigma)
        history.append({"epoch": epoch + 1, "val_accuracy": val_acc})
        logger.info("%s epoch %d: val accuracy %.4f", arch, epoch + 1, val_acc)
        if val_acc > best:
            best, best_state = val_acc, {k: v.clone() for k, v in net.state_dict().items()}
    net.load_state_dict(best_state)
    return model.eval(), {"val_accuracy": best, "history": history}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", choices=sorted(ARCHITECTURES), required=True)
    parser.add_argument("--out", required=True, help="folder for model.safetensors and README.md")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--noise-sigma", type=float, default=0.0, help="Gaussian noise augmentation (Cohen et al.), pixels in [0, 1]"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    start = time.time()
    model, metrics = train_classifier(args.arch, epochs=args.epochs, seed=args.seed, noise_sigma=args.noise_sigma)
    test_x, test_y = _stack(fashion_mnist("test"))
    metrics["test_accuracy"] = accuracy(model, test_x, test_y, noise_sigma=args.noise_sigma)
    metrics["noise_sigma"] = args.noise_sigma
    metrics["train_seconds"] = round(time.time() - start, 1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    safetensors.torch.save_file(model.model.state_dict(), str(out / "model.safetensors"))
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    command = "python -m recondefense.train.classifier " + " ".join(sys.argv[1:] if argv is None else argv)
    (out / "README.md").write_text(
        f"# Fashion-MNIST classifier `{out.name}`\n\n"
        f"- Architecture: `{args.arch}` (`recondefense.classifiers.{ARCHITECTURES[args.arch].__name__}`), "
        f"input [0, 1] pixels normalized inside with mean {FASHION_MNIST_MEAN[0]}, std {FASHION_MNIST_STD[0]}\n"
        "- Data: Fashion-MNIST training split (first 55,000 of the 60,000 training images); model selection on the "
        "last 5,000 (validation); the 10,000 test images were used only for the figure below.\n"
        f"- Recipe: `{command}` ({args.epochs} epochs, Adam lr 1e-3 cosine, batch 128, 2-px shifts + flips, seed {args.seed}"
        + (f", Gaussian noise augmentation sigma {args.noise_sigma}" if args.noise_sigma else "")
        + ")\n"
        f"- Validation accuracy (selected epoch{', noisy images' if args.noise_sigma else ''}): "
        f"{metrics['val_accuracy']:.4f}\n"
        f"- Test accuracy (10,000 images{', noisy' if args.noise_sigma else ''}): {metrics['test_accuracy']:.4f}\n"
    )
    print(json.dumps({k: v for k, v in metrics.items() if k != "history"}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
