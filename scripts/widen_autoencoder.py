"""Widen trained paper-AE weights to more filters per block, computing exactly the same function at first.

    python scripts/widen_autoencoder.py --from imagenet-efficientnet_lite0_lite2-pgd --widths 16,16,16 \
        --out runs/widened/start

The result is a ``recon`` weights folder to fine-tune with ``recondefense train --init-from <out> --widths ...``:
more capacity (here at the low-resolution blocks, where filters are cheap) that starts from what the trained AE
already does. Every trained tensor is copied into the leading slice of its wider counterpart; the new filters
start from PyTorch's default initialisation, and the weights that would carry them into the old filters start
at zero, so the new filters change nothing until training moves those weights (Net2Net's function-preserving
widening, Chen et al. ICLR 2016, with zero instead of copied outgoing weights).
"""

from __future__ import annotations

import argparse

import torch
from torch import nn

from recondefense import ReconstructiveDefense


def widen(defense: ReconstructiveDefense, widths: list[int], seed: int = 0) -> ReconstructiveDefense:
    """``defense`` (a ``recon`` AE) with ``widths`` filters per block, each at least the old count, same output.

    Raises:
        ValueError: not a ``recon`` AE, another number of blocks, or a block narrower than before.
    """
    old_widths = list(defense.autoencoder.widths) if defense.arch == "recon" else None
    if old_widths is None or len(widths) != len(old_widths) or any(n < o for n, o in zip(widths, old_widths)):
        raise ValueError(f"can only widen a recon AE of {old_widths} blocks to as many, each as wide or wider")
    torch.manual_seed(seed)
    hyper = {**defense.hyperparameters, "widths": widths}
    wide = ReconstructiveDefense(**hyper, meta={"widened_from": defense.meta.get("command"), "widths": widths})
    old_modules = dict(defense.autoencoder.named_modules())
    with torch.no_grad():
        for name, module in wide.autoencoder.named_modules():
            old = old_modules[name]
            for key, tensor in module.named_parameters(recurse=False) if not list(module.children()) else ():
                _copy_leading(tensor, getattr(old, key))
            for key, tensor in module.named_buffers(recurse=False):
                if tensor.ndim:
                    _copy_leading(tensor, getattr(old, key))
            if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
                out_dim, in_dim = (1, 0) if isinstance(module, nn.ConvTranspose2d) else (0, 1)
                old_out, old_in = old.weight.shape[out_dim], old.weight.shape[in_dim]
                module.weight.narrow(out_dim, 0, old_out).narrow(
                    in_dim, old_in, module.weight.shape[in_dim] - old_in
                ).zero_()
        if defense.autoencoder.skip:
            _split_skip_input(wide.autoencoder.decoder[0][0][0], defense.autoencoder.decoder[0][0][0])
    return wide


def _split_skip_input(new: nn.ConvTranspose2d, old: nn.ConvTranspose2d) -> None:
    """Re-place the weights of the last decoder block's transposed conv, whose input is the concatenation
    ``[decoder output, first encoder block]`` (``widths[0]`` channels each): the leading-slice copy put the old skip
    channels' weights on the new decoder channels; they move to the skip half, and every new channel's weight into
    the old filters is zero. Weight shape ``(in, out, k, k)``: ``(2 * old_w, old_out, ...)`` into ``(2 * new_w, ...)``.
    """
    old_w, new_w, old_out = old.weight.shape[0] // 2, new.weight.shape[0] // 2, old.weight.shape[1]
    kept = new.weight[:, :old_out]
    kept.zero_()
    kept[:old_w] = old.weight[:old_w]
    kept[new_w : new_w + old_w] = old.weight[old_w:]


def _copy_leading(new: torch.Tensor, old: torch.Tensor) -> None:
    """Copy ``old`` into the leading slice of ``new`` (same rank, each dimension at least as large)."""
    new[tuple(slice(0, n) for n in old.shape)] = old


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--from", dest="source", required=True, help="recon weights: name, hub id or folder")
    parser.add_argument("--widths", required=True, help="comma-separated filters per block, e.g. 16,16,16")
    parser.add_argument("--out", required=True, help="folder for the widened weights")
    parser.add_argument("--seed", type=int, default=0, help="seed of the new filters' initialisation")
    args = parser.parse_args(argv)
    defense = ReconstructiveDefense.from_pretrained(args.source)
    wide = widen(defense, [int(w) for w in args.widths.split(",")], args.seed)
    wide.save_pretrained(args.out)
    x = torch.rand(2, defense.channels, 64, 64)
    gap = (wide(x) - defense(x)).abs().max().item()
    sizes = [sum(p.numel() for p in d.parameters()) for d in (defense, wide)]
    print(
        f"widened {list(defense.autoencoder.widths)} -> {list(wide.autoencoder.widths)} "
        f"({sizes[0]:,} -> {sizes[1]:,} parameters): max output gap {gap:.2e}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
