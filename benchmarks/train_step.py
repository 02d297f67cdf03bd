"""Time per training step of `recondefense.train` against its floor, measured in the same run.

The floor is the bare arithmetic of one Algorithm 1 step, written as a plain loop on one fixed
batch: the attack making x~ (PGD against the frozen classifier, online triplets), AE forward,
classifier forward on the reconstruction, the Eq. 1 + Eq. 2 loss, backward through both, Adam.
The real loop adds data loading, seeding, logging, the NaN guard and checkpoints. Goal: ratio at
most 1.3. Setting: the shipped Fashion-MNIST recipe (SmallCNN, AE width 32 depth 2, batch 125,
PGD eps 0.04 x10). On CUDA it also prints images/s of the real loop with AMP on and off.

    python benchmarks/train_step.py [--steps 20] [--rounds 2] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from recondefense import ReconAutoencoder
from recondefense.attacks import PGD
from recondefense.classifiers import load_classifier
from recondefense.data import fashion_mnist
from recondefense.losses import ReconstructiveLoss
from recondefense.train import TrainConfig, train

WARMUP_STEPS = 3
ATTACK = {"eps": 0.04, "alpha": 0.016, "steps": 10}


def loop_seconds_per_step(steps: int, device: str, amp: bool = True) -> float:
    """Seconds per step of ``train()`` over steps WARMUP_STEPS+1 .. WARMUP_STEPS+steps (from its metrics.jsonl)."""
    with tempfile.TemporaryDirectory() as tmp:
        config = TrainConfig(
            data="fashionmnist",
            classifier="fashionmnist-smallcnn",
            attack="pgd",
            eps=ATTACK["eps"],
            step_size=ATTACK["alpha"],
            steps=ATTACK["steps"],
            triplets="online",
            width=32,
            depth=2,
            epochs=1,
            warmup_epochs=0,
            batch_size=125,
            out=str(Path(tmp) / "run"),
            log_every=1,
            checkpoint_every=10**9,
            stop_after_steps=WARMUP_STEPS + steps,
            progress=False,
            device=device,
            amp=amp,
        )
        train(config)
        records = [json.loads(line) for line in (Path(config.out) / "metrics.jsonl").read_text().splitlines()]
        seconds = {r["step"]: r["seconds"] for r in records if "step" in r}
    return (seconds[WARMUP_STEPS + steps] - seconds[WARMUP_STEPS]) / steps


def floor_seconds_per_step(steps: int, device: str) -> float:
    """Seconds per step of the same computation as a bare loop on one fixed batch."""
    classifier = load_classifier("fashionmnist-smallcnn").to(device)
    ae = ReconAutoencoder(in_channels=1, width=32, depth=2).to(device)
    loss_fn = ReconstructiveLoss(classifier)
    optimizer = torch.optim.Adam(ae.parameters(), lr=1e-3)
    data = fashion_mnist("train")
    x = torch.stack([data[i][0] for i in range(125)]).to(device)
    y = torch.tensor([data[i][1] for i in range(125)], device=device)
    attack = PGD(classifier, **ATTACK)

    def step() -> None:
        x_adv = attack(x, y)
        parts = loss_fn(ae(x_adv), x, y)
        optimizer.zero_grad(set_to_none=True)
        parts.total.backward()
        optimizer.step()
        parts.total.item()  # the loop reads the loss every step; so does the floor (and it syncs CUDA)

    for _ in range(WARMUP_STEPS):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=20, help="timed steps per measurement")
    parser.add_argument("--rounds", type=int, default=2, help="alternate floor and loop this often; best of each")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, {args.steps} steps x {args.rounds} rounds"
    )
    for device in devices:
        floors, loops = [], []
        for _ in range(args.rounds):  # interleaved, so load changes hit both alike
            floors.append(floor_seconds_per_step(args.steps, device))
            loops.append(loop_seconds_per_step(args.steps, device))
        floor, loop = min(floors), min(loops)
        print(
            f"{device}: train() {loop * 1000:.0f} ms/step, floor {floor * 1000:.0f} ms/step, ratio {loop / floor:.2f} (goal <= 1.3)"
        )
        if device == "cuda":
            for amp in (True, False):
                per_step = loop_seconds_per_step(args.steps, device, amp=amp)
                print(f"cuda: AMP {'on ' if amp else 'off'}: {125 / per_step:.0f} images/s")


if __name__ == "__main__":
    main()
