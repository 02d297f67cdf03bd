"""Seconds per CPU training step of `recondefense.train` in float32 and with bfloat16 autocast (``cpu_amp``),
measured in turn in the same run, with each run's losses on the same batches.

Default setting: the recipe of the default's strong AE at small scale: object photographs attacked by EfficientNet-Lite0
and -Lite2 (FGSM + PGD mix) and cached once, the AE widened to 16 / 64 / 128 and started from
``checkpoints/objects-mix12k/step1160``, KL guidance, batch 32, one epoch (no validation between the timed steps).
The ratio is float32 time / bfloat16 time: above 1 where the CPU has bfloat16 matrix units (AMX); on CPUs
without them bfloat16 is emulated and slower.

    python benchmarks/train_bfloat16.py [--steps 4] [--rounds 2] [--threads 1] [--batch-size 32]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import tempfile
from pathlib import Path

import torch

from recondefense.train import TrainConfig, train

WARMUP_STEPS = 1
ROOT = Path(__file__).resolve().parents[1]


def run(config: TrainConfig, cache: Path, out: Path) -> tuple[float, list[float]]:
    """Seconds per step after the warm-up, and the loss of every step, of ``config`` trained into ``out`` from the
    triplet cache in ``cache`` (linked in, so every run trains on the same triplets)."""
    out.mkdir(parents=True)
    for f in cache.glob("triplets_*.npy"):
        os.link(f, out / f.name)
    train(dataclasses.replace(config, out=str(out)))
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in records if "step" in r]
    seconds = {r["step"]: r["seconds"] for r in steps}
    last = max(seconds)
    return (seconds[last] - seconds[WARMUP_STEPS]) / (last - WARMUP_STEPS), [r["loss"] for r in steps]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=4, help="timed steps per run (after one warm-up step)")
    parser.add_argument("--rounds", type=int, default=2, help="float32 and bfloat16 in turn this often; best of each")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--data", default="objects:{images}", help="recondefense train's --data ({images}: the size)")
    parser.add_argument("--image-size", type=int, default=None)
    parser.add_argument("--classifier", default="imagenet-efficientnet_lite0,imagenet-efficientnet_lite2")
    parser.add_argument("--widths", default="16,64,128")
    parser.add_argument("--init-from", default=str(ROOT / "checkpoints/objects-mix12k/step1160"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    images = args.batch_size * (WARMUP_STEPS + args.steps)
    config = TrainConfig(
        data=args.data.format(images=images),
        image_size=args.image_size,
        classifier=args.classifier,
        attack="mix",
        triplets="cached",
        widths=args.widths,
        init_from=args.init_from or None,
        epochs=1,
        warmup_epochs=0,
        batch_size=args.batch_size,
        lr=3e-4,
        guidance="kl",
        val_limit=1,
        log_every=1,
        checkpoint_every=10**9,
        stop_after_steps=WARMUP_STEPS + args.steps,
        progress=False,
        device="cpu",
    )
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, CPU capability "
        f"{torch.backends.cpu.get_cpu_capability()}, {args.steps} steps x {args.rounds} rounds, batch {args.batch_size}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "cache"
        train(dataclasses.replace(config, out=str(cache), stop_after_steps=1))  # the triplets, once
        timings: dict[bool, list[float]] = {False: [], True: []}
        losses: dict[bool, list[float]] = {}
        for round_ in range(args.rounds):  # in turn, so load changes hit both alike
            for amp in (False, True):
                amp_config = dataclasses.replace(config, cpu_amp=amp)
                seconds, losses[amp] = run(amp_config, cache, Path(tmp) / f"{round_}-{amp}")
                timings[amp].append(seconds)
    fp32, bf16 = min(timings[False]), min(timings[True])
    print(f"losses float32:  {' '.join(f'{v:.4f}' for v in losses[False])}")
    print(f"losses bfloat16: {' '.join(f'{v:.4f}' for v in losses[True])}")
    ratio = f"{fp32 / bf16:.2f}" if bf16 > 0 else "n/a (steps shorter than the log's 0.1 s)"
    print(f"cpu: float32 {fp32 * 1000:.0f} ms/step, bfloat16 {bf16 * 1000:.0f} ms/step, ratio {ratio}")


if __name__ == "__main__":
    main()
