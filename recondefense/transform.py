"""The pixel-space transform contract every defense in the package follows.

A defense takes images in [0, 1] of shape ``(C, H, W)`` or ``(N, C, H, W)`` (any ``H`` and ``W``;
``uint8`` is accepted and scaled by 1/255; ``float16``/``bfloat16``/``float32``/``float64`` are kept),
and returns purified images in [0, 1] with the input's shape. :class:`PixelDefense` does the
checking and reshaping once, so subclasses only implement :meth:`PixelDefense.purify` on a float
``(N, C, H, W)`` batch.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from collections.abc import Iterator

import torch
from torch import nn

__all__ = ["PixelDefense", "check_normalized", "check_pixels", "range_tolerance", "is_tracing", "RANGE_TOLERANCE"]

#: How far outside [0, 1] a float32/float64 input may stray (rounding of un-normalization) before it is refused.
RANGE_TOLERANCE = 1e-3


def range_tolerance(dtype: torch.dtype) -> float:
    """How far outside [0, 1] an input of ``dtype`` may stray: :data:`RANGE_TOLERANCE`, or 8 units in the last
    place at 1.0 for coarser dtypes (bfloat16: 0.0625, float16: 0.0078), where un-normalizing rounds more."""
    return max(RANGE_TOLERANCE, 8 * torch.finfo(dtype).eps) if dtype.is_floating_point else RANGE_TOLERANCE


def is_tracing(tensor: torch.Tensor | None = None) -> bool:
    """True under ``torch.compile``/``torch.export``/``torch.jit.trace``, or for meta and fake tensors: the value
    checks, which read numbers back to the host, are skipped there (the graph keeps only the computation)."""
    if torch.jit.is_tracing() or torch.compiler.is_compiling():
        return True
    if tensor is None:
        return False
    from torch._subclasses.fake_tensor import is_fake

    return tensor.device.type == "meta" or is_fake(tensor)


_FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)

#: The tensor whose values the caller has read back and checked already (``Defended``): its check is skipped.
_CHECKED: contextvars.ContextVar[torch.Tensor | None] = contextvars.ContextVar("recondefense_checked", default=None)


def value_range(images: torch.Tensor, *more: torch.Tensor) -> list[float]:
    """The smallest and largest value of ``images`` (both NaN when one is NaN), then of each of ``more`` (of the
    same dtype), all read back to the host at once: ``[lo, hi, lo, hi, ...]``."""
    return torch.stack([v for t in (images, *more) for v in torch.aminmax(t.detach())]).tolist()


@contextlib.contextmanager
def values_checked(images: torch.Tensor) -> Iterator[None]:
    """Within the block, :func:`check_pixels` skips the value checks of ``images`` (this very tensor only): the
    caller has made them, so an eager call reads the values back to the host once instead of twice."""
    token = _CHECKED.set(images)
    try:
        yield
    finally:
        _CHECKED.reset(token)


def _check_tensor(images: object, dtypes: tuple[torch.dtype, ...], name: str, expected: str, fix: str) -> None:
    """Refuse what is not a tensor of one of ``dtypes`` (``expected`` says which in words, ``fix`` how to get one)."""
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"expected {name} as a torch.Tensor, got {type(images).__name__}")
    if images.dtype not in dtypes:
        raise TypeError(f"expected {name} of dtype {expected}, got {images.dtype}: {fix}")


def _as_batch(images: torch.Tensor, channels: int | None, name: str, why: str) -> torch.Tensor:
    """``(C, H, W)`` or ``(N, C, H, W)`` -> ``(N, C, H, W)``, refusing another rank, another channel count than
    ``channels`` (None: any; ``why`` ends that message) and an empty batch or image."""
    if images.ndim not in (3, 4):
        raise ValueError(
            f"expected {name} of shape (C, H, W) or (N, C, H, W), got {images.ndim} dimensions {tuple(images.shape)}"
        )
    batch = images if images.ndim == 4 else images.unsqueeze(0)
    if channels is not None and batch.shape[1] != channels:
        raise ValueError(
            f"expected {name} with {channels} channel(s) in dimension {images.ndim - 3}, got shape "
            f"{tuple(images.shape)}: {why}"
        )
    if batch.numel() == 0:
        raise ValueError(f"expected a non-empty batch of non-empty images, got {name} of shape {tuple(images.shape)}")
    return batch


def check_normalized(images: torch.Tensor, channels: int, name: str = "images") -> None:
    """Validate a classifier input normalized with a ``channels``-value mean/std (what ``Defended`` takes).

    Args:
        images: ``(C, H, W)`` or ``(N, C, H, W)`` floating point (normalized values have no uint8 form).

    Raises:
        TypeError: not a tensor, or not floating point.
        ValueError: wrong rank, a channel count other than ``channels``, or an empty batch or image.
    """
    _check_tensor(
        images,
        _FLOAT_DTYPES,
        name,
        "floating point (normalized with the model's mean/std)",
        "normalize with torchvision.transforms.v2.Normalize(mean, std) after ToDtype(torch.float32, scale=True), "
        "or build Defended(model, defense, mean=None, std=None) to feed [0, 1] pixels",
    )
    _as_batch(images, channels, name, f"the mean/std given to Defended have {channels} value(s)")


def check_pixels(
    images: torch.Tensor,
    *,
    channels: int | None = None,
    device: torch.device | None = None,
    name: str = "images",
) -> torch.Tensor:
    """Validate a pixel-space image tensor and return it as a floating ``(N, C, H, W)`` batch.

    Args:
        images: ``(C, H, W)`` or ``(N, C, H, W)``, float in [0, 1] or ``uint8`` in [0, 255].
        channels: the channel count the caller needs, or None for any.
        device: the device the caller's parameters live on, or None to skip the check.
        name: how the argument is named in error messages.

    Returns:
        ``(N, C, H, W)`` floating tensor in [0, 1] (``uint8`` becomes ``float32``; a float input
        keeps its dtype and is not copied).

    Raises:
        TypeError: not a tensor, or a dtype other than ``uint8`` or floating point.
        ValueError: wrong rank, wrong channel count, an empty batch or image, NaN/Inf, values
            outside [0, 1] (beyond :func:`range_tolerance`), or a device other than ``device``. The value
            checks (NaN/Inf, range) are skipped while tracing (:func:`is_tracing`) and for a tensor whose values
            the caller has checked already (``Defended``).
    """
    _check_tensor(
        images,
        _FLOAT_DTYPES + (torch.uint8,),
        name,
        "uint8 or floating point",
        "convert with torchvision.transforms.v2.ToDtype(torch.float32, scale=True)",
    )
    batch = _as_batch(images, channels, name, f"these weights were trained on {channels}-channel images")
    if device is not None and batch.device != device:
        raise ValueError(
            f"{name} are on {batch.device} but the defense is on {device}: move one with .to({str(device)!r})"
        )
    if batch.dtype == torch.uint8:
        return batch.float() / 255
    if is_tracing(batch) or images is _CHECKED.get():
        return batch
    lo, hi = value_range(batch)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"{name} contain NaN or Inf values")
    tolerance = range_tolerance(batch.dtype)
    if lo < -tolerance or hi > 1 + tolerance:
        raise ValueError(f"expected pixel values in [0, 1], got min={lo:.3g} max={hi:.3g}: {_range_hint(lo, hi)}")
    return batch


def _range_hint(lo: float, hi: float) -> str:
    """What a batch outside [0, 1] most likely is, and the fix (for the error of :func:`check_pixels`)."""
    if lo >= -0.5 and hi > 2:
        return "these look like 0-255 values; divide by 255 (or pass uint8, or ToDtype(torch.float32, scale=True))"
    if lo < 0:
        return (
            "these look normalized, (x - mean) / std; pass [0, 1] pixels, or, for a classifier that takes normalized "
            "images, Defended(model) (its default input='normalized' un-normalizes for you)"
        )
    return "clamp or rescale them into [0, 1] (values a little above 1 come from resizing or sharpening)"


class PixelDefense(nn.Module):
    """Base class of input-purifying defenses: validate, purify a batch, restore the input's form.

    Subclasses implement :meth:`purify`. Class attributes tell attacks how to get through it:

    - ``differentiable``: gradients of :meth:`purify` are meaningful (else attack with BPDA through
      :meth:`surrogate`);
    - ``randomized``: outputs are random (attack with EOT);
    - ``channels``: the channel count the defense requires (None: any).

    Shape: ``(C, H, W)`` or ``(N, C, H, W)`` -> same shape. Values: [0, 1] -> [0, 1].
    """

    differentiable: bool = True
    randomized: bool = False

    @property
    def channels(self) -> int | None:
        """Channel count the defense requires, or None for any."""
        return None

    def _device(self) -> torch.device | None:
        tensor = next(self.parameters(), None)
        if tensor is None:
            tensor = next(self.buffers(), None)
        return None if tensor is None else tensor.device

    def purify(self, images: torch.Tensor) -> torch.Tensor:
        """Purify a floating ``(N, C, H, W)`` batch in [0, 1]; returns the same shape in [0, 1]."""
        raise NotImplementedError

    def surrogate(self, images: torch.Tensor) -> torch.Tensor:
        """Differentiable approximation used by BPDA for the backward pass (default: identity)."""
        return images

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Purify ``images``: ``(C, H, W)`` or ``(N, C, H, W)`` in [0, 1] -> same shape in [0, 1]."""
        batch = check_pixels(images, channels=self.channels, device=self._device())
        out = self.purify(batch).clamp(0, 1)
        return out if images.ndim == 4 else out.squeeze(0)
