"""Throughput of every purifier at 224 px, as ratios to the reconstructive AE.

The same batch of images goes through the AE (``ReconstructiveDefense()``, default config; untrained
weights time the same), each baseline of :mod:`recondefense.baselines` (STL when this version has
it), and ART's ``TotalVarMin`` / ``SpatialSmoothing`` when ``adversarial-robustness-toolbox`` is
installed (``pip install .[bench]``). One untimed call on one image warms each up, then one timed
run over the batch. Prints images/s and ``time / AE time`` (= AE img/s over its img/s: how many
times faster the AE is; below 1, the AE is the slower). Goal of issue 4: the AE at least 10x faster than pixel deflection and STL.

    python benchmarks/purifiers.py [--images 8] [--size 224] [--threads N] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from recondefense import ReconstructiveDefense, baselines


def art_purifiers() -> dict[str, Callable[[torch.Tensor], torch.Tensor]]:
    """ART's TotalVarMin and SpatialSmoothing on NCHW numpy, or nothing when ART is missing."""
    try:
        from art.defences.preprocessor import SpatialSmoothing, TotalVarMin
    except ImportError:
        return {}

    def wrap(preprocessor, channels_last: bool) -> Callable[[torch.Tensor], torch.Tensor]:
        def run(x: torch.Tensor) -> torch.Tensor:
            array = x.detach().cpu().numpy()
            out, _ = preprocessor(array.transpose(0, 2, 3, 1) if channels_last else array)
            out = np.asarray(out)
            return torch.from_numpy(out.transpose(0, 3, 1, 2) if channels_last else out)

        return run

    # ART defaults: TotalVarMin prob 0.3, L2, lambda 0.5, L-BFGS-B, 10 iterations (NHWC only);
    # SpatialSmoothing 3x3 median filter.
    return {
        "ART TotalVarMin": wrap(TotalVarMin(clip_values=(0.0, 1.0)), channels_last=True),
        "ART SpatialSmoothing": wrap(SpatialSmoothing(clip_values=(0.0, 1.0), channels_first=True), False),
    }


def purifiers(device: torch.device) -> dict[str, Callable[[torch.Tensor], torch.Tensor]]:
    found: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
        "AE (ReconstructiveDefense)": ReconstructiveDefense().to(device),
        "PixelDeflection": baselines.PixelDeflection(seed=0),
        "RandomResizePad": baselines.RandomResizePad(seed=0),
        "FeatureDistillation": baselines.FeatureDistillation().to(device),
        "JPEG(75)": baselines.JPEG(75),
        "BitDepth(5)": baselines.BitDepth(5),
    }
    stl = getattr(baselines, "STL", None)  # another issue's deliverable; timed when present
    if stl is not None:
        try:
            found["STL"] = stl().to(device)
        except OSError as err:  # e.g. its dictionary not built yet
            print(f"STL skipped: {err}")
    found.update(art_purifiers())
    return found


def seconds(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> float:
    with torch.inference_mode():
        fn(x[:1])  # warm-up, untimed
        if x.device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn(x)
        if x.device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=8, help="batch size of the timed run")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--skip", nargs="*", default=[], help="names to leave out (e.g. 'ART TotalVarMin')")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    # Natural-ish images: smooth content plus fine noise (the wavelet/DCT costs do not depend on it).
    low = torch.rand(args.images, 3, args.size // 16, args.size // 16)
    x = F.interpolate(low, size=(args.size, args.size), mode="bilinear", align_corners=False)
    x = (x + 0.02 * torch.randn_like(x)).clamp(0, 1).to(device)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, device {device}, "
        f"{args.images} images of {args.size}x{args.size}, one timed run each"
    )
    print(f"{'purifier':28} {'seconds':>9} {'img/s':>10} {'time / AE time':>15}")
    ae_rate = None
    for name, fn in purifiers(device).items():
        if name in args.skip:
            continue
        rate = args.images / seconds(fn, x)
        ae_rate = ae_rate or rate  # the AE comes first
        print(f"{name:28} {args.images / rate:9.3f} {rate:10.2f} {ae_rate / rate:15.2f}")


if __name__ == "__main__":
    main()
