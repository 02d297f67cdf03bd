"""Export a defended classifier to ONNX with dynamic batch, height and width, run it in onnxruntime, compare.

    python examples/export_onnx.py [--weights NAME] [--out defended.onnx] [--legacy]

Needs ``onnx``, ``onnxscript`` and ``onnxruntime`` (``pip install recondefense[test]``). ``--legacy`` uses
the TorchScript-based exporter (``dynamo=False``) instead of the default ``torch.export``-based one.
The classifier here is an untrained torchvision resnet18, a stand-in for yours.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from torchvision.models import resnet18

from recondefense import IMAGENET_MEAN, IMAGENET_STD, Defended, ReconstructiveDefense
from recondefense.defense import DEFAULT_IMAGENET_WEIGHTS
from recondefense.files import output_problem


def normalized_images(*shape: int) -> torch.Tensor:
    """Random images as the defended resnet18 takes them: ``shape`` ``(N, 3, H, W)`` pixels in [0, 1], normalized
    with the ImageNet mean/std (what ``Defended`` un-normalizes; values outside [0, 1] would be clamped, warned)."""
    mean, std = torch.tensor(IMAGENET_MEAN).view(3, 1, 1), torch.tensor(IMAGENET_STD).view(3, 1, 1)
    return (torch.rand(*shape) - mean) / std


def export(weights: str, out: str, legacy: bool = False) -> float:
    """Export ``Defended(resnet18, weights)`` to ``out``; returns the largest |onnxruntime - torch| logit gap."""
    import onnxruntime

    torch.manual_seed(0)
    model = Defended(resnet18(num_classes=10), ReconstructiveDefense.from_pretrained(weights)).eval()
    example = normalized_images(2, 3, 96, 128)
    names = {"input_names": ["images"], "output_names": ["logits"]}
    if legacy:
        axes = {"images": {0: "batch", 2: "height", 3: "width"}, "logits": {0: "batch"}}
        torch.onnx.export(model, (example,), out, dynamo=False, dynamic_axes=axes, **names)
    else:
        batch, height, width = (torch.export.Dim(n, min=lo, max=1024) for n, lo in (("b", 1), ("h", 64), ("w", 64)))
        shapes = {"x": {0: batch, 2: height, 3: width}}
        torch.onnx.export(model, (example,), out, dynamo=True, dynamic_shapes=shapes, **names)
    session = onnxruntime.InferenceSession(out, providers=["CPUExecutionProvider"])
    test = normalized_images(3, 3, 112, 144)  # another batch and size than the example
    (onnx_logits,) = session.run(None, {"images": test.numpy()})
    with torch.no_grad():
        torch_logits = model(test).numpy()
    return float(np.abs(onnx_logits - torch_logits).max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", default=DEFAULT_IMAGENET_WEIGHTS, help="defense weights (name, hub id or folder)")
    parser.add_argument("--out", default="defended.onnx")
    parser.add_argument("--legacy", action="store_true", help="TorchScript-based exporter (dynamo=False)")
    args = parser.parse_args()
    # Checked before the (slow) export: the output file's folder, then the weights.
    problem = output_problem("--out", Path(args.out))
    if problem is not None:
        parser.error(problem)
    try:
        ReconstructiveDefense.from_pretrained(args.weights)
    except (OSError, ValueError) as err:
        parser.error(f"--weights {args.weights}: {err}")
    gap = export(args.weights, args.out, args.legacy)
    print(f"wrote {args.out}; onnxruntime vs torch on a new batch and size: max |logit gap| = {gap:.2e}")


if __name__ == "__main__":
    main()
