"""Evaluation throughput under torchrun: images/s of ``recondefense evaluate`` with one process and with two.

Both run the same command through ``torchrun --standalone`` on the same cores: the first ``--images`` Fashion-MNIST
test images, ``--defenses none,fashionmnist-smallcnn-pgd --attacks none,pgd``, shards of ``--shard-size`` images;
one process with ``--threads`` threads (default: all cores), then two processes with half as many each. Images/s
counts the whole command, start-up included (imports, loading, the process group), the fastest of ``--repeats``
runs. The accuracies and n of both are compared too (they must be the same; PSNR and SSIM may differ in the last
bits between thread counts, as PGD's float sums do). Goal (issue 28): ratio (two / one) > 1.

    python benchmarks/evaluate_ranks.py [--images 1000] [--shard-size 250] [--repeats 1] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def images_per_second(processes: int, threads: int, args: argparse.Namespace, out: Path) -> float:
    """Images/s of the evaluate command under torchrun with ``processes`` processes of ``threads`` threads each
    (the fastest of ``args.repeats`` runs), its rows written to ``out``."""
    command = [
        sys.executable,
        *("-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes)),
        *("-m", "recondefense.evaluate", "--tier", "fashionmnist", "--defenses", "none,fashionmnist-smallcnn-pgd"),
        *("--attacks", "none,pgd", "--limit", str(args.images), "--shard-size", str(args.shard_size)),
        *("--json", str(out), "--no-progress"),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    best = float("inf")
    for _ in range(args.repeats):
        start = time.perf_counter()
        result = subprocess.run(command, env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        if result.returncode != 0:
            raise SystemExit(f"error: {' '.join(command)} failed:\n{result.stderr[-2000:]}")
        best = min(best, seconds)
    return args.images / best


def accuracies(path: Path) -> dict[tuple[str, str], tuple[float | None, int]]:
    """``(defense, attack) -> (accuracy, n)`` of a rows file (the quality rows: n only)."""
    return {(r["defense"], r["attack"]): (r.get("accuracy"), r["n"]) for r in json.loads(path.read_text())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--shard-size", type=int, default=250)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="threads of the one process")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        one = images_per_second(1, args.threads, args, Path(folder) / "one.json")
        two = images_per_second(2, max(args.threads // 2, 1), args, Path(folder) / "two.json")
        cells = accuracies(Path(folder) / "one.json")
        same = cells == accuracies(Path(folder) / "two.json")
    pgd = cells["fashionmnist-smallcnn-pgd", "pgd"][0]
    print(f"{args.images} images in shards of {args.shard_size}, {args.threads} threads in all, start-up included")
    print(f"1 process: {one:.1f} images/s; 2 processes: {two:.1f} images/s")
    print(f"same accuracies and n: {same} (ours under PGD: {pgd:.3f})")
    print(f"ratio (2 processes / 1): {two / one:.3f}")


if __name__ == "__main__":
    main()
