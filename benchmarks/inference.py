"""Latency and throughput of resnet50 vs Defended(resnet50) and the AE alone, at 224 px.

Prints, for batch 1 and 32 on the CPU (and CUDA when available), the median time per batch and
images/s of each (the three measured in turn, round after round), and the ratio Defended / bare. Goal: ratio at
most 1.25.

    python benchmarks/inference.py [--weights NAME] [--inputs noise|photos|attacked] [--repeats 5] [--threads N] [--devices cpu,cuda]
        [--malloc default|tuned]

``--weights`` names the defense measured (default: the weights ``Defended(model)`` loads); ``--width`` instead
measures an untrained purifier of that width (``--arch``: the paper AE, or e.g. ``gated``: the same AE behind the
default's gate), which sizes a purifier against the budget before training it.

``--malloc tuned`` runs the measurement with glibc's allocator told to keep freed memory (:data:`TUNED_MALLOC`, the
process started again with them): by default glibc hands every buffer above a few MB back to the kernel when it is
freed, so each batch-32 forward pays page faults on fresh memory for every activation, and a pipeline that makes
more tensors (un-normalize, purify, normalize) pays more of them. PyTorch's CPU tuning guide recommends jemalloc or
tcmalloc for the same reason; these variables need no extra package.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import torch
from torchvision.models import resnet50

from recondefense import Defended, ReconstructiveDefense
from recondefense.defense import DEFAULT_IMAGENET_WEIGHTS

#: glibc malloc settings of ``--malloc tuned``: buffers up to 32 MB from the heap (not one mmap each), and freed
#: memory kept for the next batch instead of returned to the kernel.
TUNED_MALLOC = {
    "MALLOC_MMAP_THRESHOLD_": "33554432",
    "MALLOC_TRIM_THRESHOLD_": "4294967296",
    "MALLOC_TOP_PAD_": "1073741824",
}


#: ``--inputs attacked``: the size of each pixel's random-sign perturbation (the paper's ImageNet budget).
ATTACK_EPS = 0.01


def median_seconds(calls: list[tuple], repeats: int, device: torch.device) -> list[float]:
    """The median seconds of each ``(fn, x)`` call, measured interleaved (one of each per round), so a machine
    that slows down or speeds up during the run shifts every call alike instead of the one measured then."""
    times: list[list[float]] = [[] for _ in calls]
    with torch.inference_mode():
        for fn, x in calls:
            fn(x)  # warm-up
        for _ in range(repeats):
            for k, (fn, x) in enumerate(calls):
                if device.type == "cuda":
                    torch.cuda.synchronize()
                start = time.perf_counter()
                fn(x)
                if device.type == "cuda":
                    torch.cuda.synchronize()
                times[k].append(time.perf_counter() - start)
    return [statistics.median(t) for t in times]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", default=DEFAULT_IMAGENET_WEIGHTS, help="defense weights (name, hub id or folder)")
    parser.add_argument("--width", type=int, default=None, help="measure an untrained purifier of this width instead")
    parser.add_argument(
        "--arch", default="recon", help='with --width: its architecture ("recon", "gated" with a recon AE inside, ...)'
    )
    parser.add_argument("--detail-depth", type=int, default=3, help="with --width and --arch gated: the gate's levels")
    parser.add_argument(
        "--inputs",
        default="noise",
        choices=("noise", "photos", "attacked"),
        help="noise: torch.rand images (a gate opens on them: the purifier runs on every image, the worst case); "
        "photos: the 20 labelled foolbox photos, repeated to the batch (clean traffic: a gate stays shut); "
        f"attacked: the photos with a random-sign perturbation of {ATTACK_EPS} (the paper's budget; the gate opens "
        "on it as on PGD's, so a strong purifier behind it runs: attacked traffic)",
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument(
        "--devices", default="cpu,cuda", help="comma-separated devices measured (cuda only where available)"
    )
    parser.add_argument(
        "--malloc",
        default="default",
        choices=("default", "tuned"),
        help="glibc allocator settings: as the environment has them, or TUNED_MALLOC (keeps freed memory)",
    )
    args = parser.parse_args()
    if args.malloc == "tuned" and any(os.environ.get(k) != v for k, v in TUNED_MALLOC.items()):
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, **TUNED_MALLOC})  # read at start-up
    if args.threads:
        torch.set_num_threads(args.threads)
    wanted = args.devices.split(",")
    devices = [torch.device(d) for d in wanted if d == "cpu" or (d == "cuda" and torch.cuda.is_available())]
    what = f"{args.arch} width {args.width} (untrained)" if args.width else args.weights
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, defense: {what}, inputs: {args.inputs}, "
        f"malloc: {args.malloc}"
    )
    photos = None
    if args.inputs != "noise":
        from recondefense.data import imagenet_samples

        photos = torch.stack([image for image, _ in imagenet_samples()])
    if args.inputs == "attacked":
        signs = torch.randn(photos.shape, generator=torch.Generator().manual_seed(0)).sign()
        photos = (photos + ATTACK_EPS * signs).clamp(0, 1)
    print(
        f"{'device':6} {'batch':>5} {'resnet50 ms':>12} {'defended ms':>12} {'AE ms':>9} {'img/s bare':>11} {'img/s def':>10} {'ratio':>6}"
    )
    for device in devices:
        net = resnet50().eval().to(device)
        defense = (
            ReconstructiveDefense(width=args.width, arch=args.arch, detail_depth=args.detail_depth)
            if args.width
            else ReconstructiveDefense.from_pretrained(args.weights)
        ).to(device)
        defended = Defended(net, defense).eval()
        for batch in args.batches:
            if photos is None:
                x = torch.rand(batch, 3, 224, 224, device=device)
            else:
                x = photos[torch.arange(batch) % len(photos)].to(device)
            normalized = (x - defended.mean) / defended.std
            bare, full, ae = median_seconds(
                [(net, normalized), (defended, normalized), (defense, x)], args.repeats, device
            )
            print(
                f"{device.type:6} {batch:5d} {bare * 1e3:12.1f} {full * 1e3:12.1f} {ae * 1e3:9.1f} "
                f"{batch / bare:11.1f} {batch / full:10.1f} {full / bare:6.3f}"
            )
        with torch.inference_mode():
            gate = defense.gate(photos.to(device)) if photos is not None else None
        if gate is not None:
            print(f"{device.type}: the gate opens (above 0.5) on {int((gate > 0.5).sum())} of {len(gate)} inputs")


if __name__ == "__main__":
    main()
