"""The fully-convolutional autoencoder of paper section 3.1."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .transform import is_tracing

__all__ = ["ConvBNReLU", "ReconAutoencoder"]


class ConvBNReLU(nn.Sequential):
    """``conv -> BatchNorm2d -> ReLU`` (children 0, 1, 2; the state-dict keys of a plain ``nn.Sequential``).

    Outside training the batch norm is folded into the convolution's weight and bias on the fly (``w * s``,
    ``beta - mean * s`` with ``s = gamma / sqrt(var + eps)``), so inference makes one convolution and no
    normalisation pass over the activations: the same values within float rounding, less time on the CPU
    (``benchmarks/inference.py``), and still differentiable in the input and every parameter. In training (and for
    a grouped transposed convolution) the three layers run as they are.

    Shape: ``(N, C_in, H, W)`` -> ``(N, C_out, H', W')``, as the convolution gives.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        conv, norm, act = self
        transposed = isinstance(conv, nn.ConvTranspose2d)
        if self.training or norm.training or norm.running_var is None or (transposed and conv.groups != 1):
            return super().forward(x)
        scale = norm.running_var.add(norm.eps).rsqrt()
        if norm.weight is not None:
            scale = scale * norm.weight
        bias = -norm.running_mean * scale
        if norm.bias is not None:
            bias = bias + norm.bias
        if conv.bias is not None:
            bias = bias + conv.bias * scale
        if transposed:  # weight (C_in, C_out, k, k)
            weight = conv.weight * scale.view(1, -1, 1, 1)
            out = F.conv_transpose2d(
                x, weight, bias, conv.stride, conv.padding, conv.output_padding, conv.groups, conv.dilation
            )
        else:  # weight (C_out, C_in / groups, k, k)
            out = conv._conv_forward(x, conv.weight * scale.view(-1, 1, 1, 1), bias)
        return act(out)


def _conv_bn_relu(c_in: int, c_out: int, stride: int = 1) -> ConvBNReLU:
    return ConvBNReLU(
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


def _tconv_bn_relu(c_in: int, c_out: int) -> ConvBNReLU:
    return ConvBNReLU(
        nn.ConvTranspose2d(c_in, c_out, 3, stride=2, padding=1, output_padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class ReconAutoencoder(nn.Module):
    """Strided-conv encoder, mirrored transposed-conv decoder, one skip (paper section 3.1).

    Encoder block ``i`` (``i = 0 .. depth-1``): conv3x3 + BN + ReLU to ``widths[i]`` filters, then a
    stride-2 conv3x3 + BN + ReLU (the paper's "pooling by strided convolution"). Filters halve from
    block to block (``widths = (width, width/2, width/4, ...)``), so the deepest block is the small
    bottleneck. Decoder block ``i`` mirrors encoder block ``i``: a stride-2 transposed conv3x3 + BN +
    ReLU back to the block's input resolution, then conv3x3 + BN + ReLU to the filter count the
    encoder block received. The last decoder block ends in a plain conv3x3 to ``in_channels`` and a
    sigmoid instead. The single skip concatenates the output of the first encoder block to the input
    of the last decoder block (section 3.1.2).

    Shape: ``(N, C, H, W) -> (N, C, H, W)`` with ``H`` and ``W`` multiples of ``2**depth`` (
    :class:`~recondefense.ReconstructiveDefense` pads and crops any other size). Values: input
    pixels in [0, 1], output in (0, 1).

    Cost of the default (``width=16, depth=3``, 3 channels) at 224x224, counted with
    ``torch.utils.flop_counter``: 0.33 GFLOPs and 12.3 k parameters, 4.0% of a resnet50 forward
    (8.18 GFLOPs). Width 8: 0.10 GFLOPs; 24: 0.68; 32: 1.14. See ``benchmarks/inference.py`` for
    the measured wall-clock ratio.

    Args:
        in_channels: image channels (3 for RGB, 1 for grayscale).
        width: filters of the first encoder block; block ``i`` has ``max(1, width // 2**i)``.
        depth: number of encoder (and decoder) blocks; the input is downsampled by ``2**depth``.
        skip: the first-encoder-to-last-decoder skip connection (paper: on).
        widths: explicit filters per block, overriding ``width`` and ``depth``.
    """

    def __init__(
        self,
        in_channels: int = 3,
        width: int = 16,
        depth: int = 3,
        skip: bool = True,
        widths: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        if widths is None:
            if depth < 1 or width < 1:
                raise ValueError(f"expected width >= 1 and depth >= 1, got width={width} depth={depth}")
            widths = [max(1, width // 2**i) for i in range(depth)]
        widths = [int(w) for w in widths]
        if not widths or min(widths) < 1:
            raise ValueError(f"expected a non-empty list of positive widths, got {widths}")
        if in_channels < 1:
            raise ValueError(f"expected in_channels >= 1, got {in_channels}")
        if skip and len(widths) < 2:
            raise ValueError(
                "the skip connection needs depth >= 2 (it joins the first encoder block to the last decoder block)"
            )
        self.in_channels = in_channels
        self.widths = tuple(widths)
        self.skip = skip

        inputs = [in_channels, *widths[:-1]]  # channels entering encoder block i
        self.encoder = nn.ModuleList(
            nn.Sequential(_conv_bn_relu(c_in, w), _conv_bn_relu(w, w, stride=2)) for c_in, w in zip(inputs, widths)
        )
        decoder = []
        for i, (c_in, w) in enumerate(zip(inputs, widths)):
            from_below = w  # decoder block i+1 (or the bottleneck) hands back widths[i] channels
            if i == 0 and skip:
                from_below += widths[0]
            if i == 0:
                out = nn.Conv2d(w, in_channels, 3, padding=1)
            else:
                out = _conv_bn_relu(w, c_in)
            decoder.append(nn.Sequential(_tconv_bn_relu(from_below, w), out))
        self.decoder = nn.ModuleList(decoder)

    @property
    def stride(self) -> int:
        """Input height and width must be multiples of this."""
        return 2 ** len(self.widths)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruct ``x``: ``(N, C, H, W)`` in [0, 1] -> ``(N, C, H, W)`` in (0, 1).

        Raises:
            ValueError: ``H`` or ``W`` is not a multiple of :attr:`stride` (checked eagerly, not while traced).
        """
        if not is_tracing():
            height, width = x.shape[-2:]
            if height % self.stride or width % self.stride:
                raise ValueError(
                    f"ReconAutoencoder with depth {len(self.widths)} takes a height and width that are multiples of "
                    f"{self.stride}, got {height}x{width}: pad the images (recondefense.purifiers.pad_to_stride), or "
                    "purify with ReconstructiveDefense, which pads and crops any size"
                )
        h = x
        first = None
        for i, block in enumerate(self.encoder):
            h = block(h)
            if i == 0:
                first = h
        for i in reversed(range(len(self.decoder))):
            if i == 0 and self.skip:
                h = torch.cat([h, first], dim=1)
            h = self.decoder[i](h)
        return torch.sigmoid(h)
