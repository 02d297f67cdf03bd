"""Image levels restored before a gate sees an image: washed-out images stretched back (:func:`restore_contrast`,
ImageNet-C's contrast) and images lifted off black brought back down (:func:`restore_black_point`, ImageNet-C's
brightness). No training: each undoes a corruption's model where the image shows its signature, and leaves every
other image exactly as it came. :func:`restore_levels` applies both, as the gated and routed purifiers do.
:func:`noise_level` estimates an image's noise from its pixels (how much of its correction the routed purifier's
denoiser applies); :func:`sharpness` how much fine detail it holds for its contrast (which images the routed
purifier's deblurring expert takes), and :func:`blur_ratio` whether that detail is missing at the finest scale (a
blur's signature); :func:`unsharp_mask` sharpens one (a deblurring expert with no weights), :func:`deblur_share` says
how much. :func:`impulse_fraction` reads salt-and-pepper dots, :func:`remove_impulses` removes them and
:func:`impulse_share` says how much of that an image gets (:func:`clean_impulses` applies it).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from .transform import is_tracing

__all__ = [
    "MAX_CONTRAST_GAIN",
    "black_point",
    "blur_ratio",
    "clean_impulses",
    "clipped_share",
    "contrast_gain",
    "contrast_spread",
    "deblur_share",
    "gaussian_blur",
    "impulse_fraction",
    "impulse_share",
    "noise_level",
    "remove_impulses",
    "restore_black_point",
    "restore_contrast",
    "restore_levels",
    "sharpness",
    "unsharp_mask",
]

#: The largest gain :func:`restore_contrast` applies: ImageNet-C's strongest contrast factor, 0.05, undone.
MAX_CONTRAST_GAIN = 20.0


def _blocks(images: torch.Tensor) -> torch.Tensor:
    """The means of the image's 4 x 4 blocks (smaller images: of their largest square blocks that fit)."""
    pool = min(4, images.shape[-2], images.shape[-1])
    return F.avg_pool2d(images, pool)


def _means_and_spread(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The per-channel means ``(N, C, 1, 1)`` and :func:`contrast_spread` ``(N,)`` of ``(N, C, H, W)`` images."""
    means = images.mean(dim=(2, 3), keepdim=True)
    return means, (images - means).pow(2).mean(dim=(1, 2, 3)).sqrt()


def contrast_spread(images: torch.Tensor) -> torch.Tensor:
    """Each image's contrast: the root mean square of its deviation from its per-channel means.

    Shape: ``(N, C, H, W)`` in [0, 1] -> ``(N,)`` in [0, 0.5] (the 231 validation object crops: 0.10 and above).
    """
    return _means_and_spread(images)[1]


def contrast_gain(images: torch.Tensor, floor: float, target: float) -> torch.Tensor:
    """The gain :func:`restore_contrast` stretches each image by: 1 where its :func:`contrast_spread` is at least
    ``floor``; below it, ``target / spread``, but at most :data:`MAX_CONTRAST_GAIN` and at most what brings the
    image's darkest or brightest 4 x 4 block (per channel) to 0 or 1. That bound is what tells a washed-out image,
    squeezed towards its means away from both ends (ImageNet-C's contrast), from a naturally dim photo whose dark
    end already touches black: the dim photo keeps its contrast (gain about 1), the washed-out one gets its range
    back. A hazy photo, lifted off black, is stretched like a washed-out one.

    Shape: ``(N, C, H, W)`` in [0, 1] -> ``(N,)``, at least 1.
    """
    return _means_and_gain(images, floor, target)[1]


def _means_and_gain(images: torch.Tensor, floor: float, target: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The per-channel means ``(N, C, 1, 1)`` and :func:`contrast_gain` ``(N,)`` of ``(N, C, H, W)`` images."""
    means, spread = _means_and_spread(images)
    if not is_tracing(images) and not bool((spread < floor).any()):  # eager: no image to stretch, no blocks read
        return means, torch.ones_like(spread)
    blocks = _blocks(images)
    darkest, brightest = blocks.amin(dim=(2, 3), keepdim=True), blocks.amax(dim=(2, 3), keepdim=True)
    room = torch.minimum((1 - means) / (brightest - means).clamp_min(1e-4), means / (means - darkest).clamp_min(1e-4))
    gain = (target / spread.clamp_min(target / MAX_CONTRAST_GAIN)).minimum(room.amin(dim=(1, 2, 3))).clamp_min(1)
    return means, torch.where(spread < floor, gain, torch.ones_like(gain))


def restore_contrast(images: torch.Tensor, floor: float, target: float) -> torch.Tensor:
    """Stretch the images whose :func:`contrast_spread` is below ``floor`` around their per-channel means by
    :func:`contrast_gain` (towards a spread of ``target``, no further than the image's own range allows), clamped to
    [0, 1]; the others, and every image when ``floor`` is 0, are returned as they are (a batch with none to stretch:
    the input itself, outside tracing). Undoes a washed-out image
    (ImageNet-C's contrast) up to the contrast the image had, which it cannot know: the image's range, capped by
    ``target``, stands in for it.

    Shape: ``(N, C, H, W)`` in [0, 1] -> same.
    """
    if floor <= 0:
        return images
    means, gain = _means_and_gain(images, floor, target)
    if not is_tracing(images) and not bool((gain != 1).any()):  # eager: nothing to stretch, nothing computed
        return images
    return torch.lerp(means, images, gain.view(-1, 1, 1, 1)).clamp(0, 1)


def _value_and_black_point(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The HSV value ``(N, 1, H, W)`` (the largest channel) and :func:`black_point` ``(N,)`` of ``(N, C, H, W)``."""
    value = images.amax(1, keepdim=True)
    return value, _blocks(value).amin(dim=(1, 2, 3))


def black_point(images: torch.Tensor) -> torch.Tensor:
    """Each image's black point: the HSV value (largest channel) of its darkest 4 x 4 block.

    Photographs nearly always hold something close to black; ImageNet-C's brightness raises every pixel's value by
    0.1-0.5 (:func:`~recondefense.corruptions.weather.brighten`), and with it the black point.

    Shape: ``(N, C, H, W)`` in [0, 1] -> ``(N,)`` in [0, 1].
    """
    return _value_and_black_point(images)[1]


def clipped_share(images: torch.Tensor) -> torch.Tensor:
    """Each image's share of clipped pixels: HSV value (largest channel) within half a grey level of 1.

    ImageNet-C's brightness raises every pixel's value by 0.1-0.5 and clips it at 1, so a brightened photo holds
    many; an attack of a few grey levels moves about half of those a photo had off full value.

    Shape: ``(N, C, H, W)`` in [0, 1] -> ``(N,)`` in [0, 1].
    """
    return (images.amax(1) >= 1 - 0.5 / 255).flatten(1).float().mean(1)


def restore_black_point(images: torch.Tensor, floor: float) -> torch.Tensor:
    """Lower the HSV value of every pixel of the images whose :func:`black_point` is at least ``floor`` by that
    black point (hue and saturation kept: RGB scaled by ``(V - b) / V``), so their darkest block touches black
    again; the others, and every image when ``floor`` is 0, are returned as they are (a batch with none to lower:
    the input itself, outside tracing). Undoes ImageNet-C's
    brightness where it did not clip (a pixel raised to 1 comes back at ``1 - b``), up to the black point the image
    had, which it cannot know.

    Shape: ``(N, C, H, W)`` in [0, 1] -> same.
    """
    if floor <= 0:
        return images
    value, black = _value_and_black_point(images)
    lifted = black >= floor
    if not is_tracing(images) and not bool(lifted.any()):  # eager: nothing to lower, nothing computed
        return images
    shift = torch.where(lifted, black, torch.zeros_like(black)).view(-1, 1, 1, 1)
    lowered = (value - shift).clamp_min(0)
    scale = torch.where(value > 0, lowered / value.clamp_min(torch.finfo(images.dtype).tiny), torch.zeros_like(value))
    return (images * scale).clamp(0, 1)


def restore_levels(
    images: torch.Tensor, contrast_floor: float, contrast_target: float, black_point_floor: float = 0.0
) -> torch.Tensor:
    """:func:`restore_contrast`, then :func:`restore_black_point` (each a no-op at floor 0).

    Shape: ``(N, C, H, W)`` in [0, 1] -> same.
    """
    return restore_black_point(restore_contrast(images, contrast_floor, contrast_target), black_point_floor)


def noise_level(images: torch.Tensor) -> torch.Tensor:
    """Each image's noise standard deviation, estimated from its pixels (Immerkaer, "Fast noise variance
    estimation", CVIU 1996): ``sqrt(pi / 2) / 6`` times the mean absolute response to his kernel
    ``[[1, -2, 1], [-2, 4, -2], [1, -2, 1]]`` (the difference of two Laplacians: zero on any locally linear image)
    over the valid pixels of every channel. Near 0 on clean photographs, it grows with ImageNet-C's noise severity
    (less than the noise's sigma where clipping at 0 and 1 removes some of it). Images smaller than 3 x 3 read 0.

    Shape: ``(N, C, H, W)`` in [0, 1] -> ``(N,)``, in pixel units.
    """
    if min(images.shape[-2:]) < 3:
        return images.new_zeros(images.shape[0])
    # the kernel is the outer product of (1, -2, 1) with itself: a second difference along rows, then columns (shifted
    # sums, no convolution: exports to ONNX whatever the channel count is known as)
    rows = images[..., :, :-2] - 2 * images[..., :, 1:-1] + images[..., :, 2:]
    response = rows[..., :-2, :] - 2 * rows[..., 1:-1, :] + rows[..., 2:, :]
    return response.abs().mean(dim=(1, 2, 3)) * (math.sqrt(math.pi / 2) / 6)


def sharpness(images: torch.Tensor) -> torch.Tensor:
    """Each image's fine detail for its contrast: the mean absolute response to the 3 x 3 4-neighbour Laplacian
    (``[[0, 1, 0], [1, -4, 1], [0, 1, 0]]``) over the valid pixels of every channel, divided by
    :func:`contrast_spread` (so a dim or washed-out photo reads as sharp as it is). Blur lowers it, noise raises it; a
    flat image (spread below 1e-3) and one smaller than 3 x 3 read 0.

    Shape: ``(N, C, H, W)`` in [0, 1] -> ``(N,)``, non-negative and unbounded (a pixel checkerboard reads 8).
    """
    if min(images.shape[-2:]) < 3:
        return images.new_zeros(images.shape[0])
    laplacian = images[..., :-2, 1:-1] + images[..., 2:, 1:-1]  # the Laplacian's response, without a convolution
    laplacian += images[..., 1:-1, :-2]  # in place: one temporary (no sum needs its inputs for the gradient)
    laplacian += images[..., 1:-1, 2:]
    laplacian.add_(images[..., 1:-1, 1:-1], alpha=-4)
    detail = laplacian.abs().mean(dim=(1, 2, 3))
    spread = contrast_spread(images)
    return torch.where(spread > 1e-3, detail / spread.clamp_min(1e-3), torch.zeros_like(detail))


def blur_ratio(images: torch.Tensor, full: torch.Tensor | None = None) -> torch.Tensor:
    """How much sharper each image reads at half resolution: :func:`sharpness` of its 2 x 2 average-pooled version
    over its own. An image with no detail at the pixel scale (a Gaussian or defocus blur) reads close to 4, the
    Laplacian's scaling for a smooth signal; clean photographs read about 1.2-2.2 (their finest detail is at the
    pixel scale), and blurs that leave pixel-scale jitter (glass blur) or noise read lower still. Images whose
    sharpness is 0, or smaller than 6 x 6, read 0. ``full``: their :func:`sharpness`, where already measured.

    Shape: ``(N, C, H, W)`` in [0, 1] -> ``(N,)``, non-negative.
    """
    if min(images.shape[-2:]) < 6:
        return images.new_zeros(images.shape[0])
    full = sharpness(images) if full is None else full
    half = sharpness(F.avg_pool2d(images, 2))
    return torch.where(full > 0, half / full.clamp_min(1e-12), torch.zeros_like(full))


def impulse_fraction(images: torch.Tensor, margin: float = 0.1) -> torch.Tensor:
    """Each image's share of isolated extreme values, the signature of salt-and-pepper noise (ImageNet-C's impulse
    noise): channel values exactly 0 or 1 whose left and right neighbours (same channel, same row) both differ from
    them by more than ``margin``, counted on every 4th row. Clipped highlights and shadows come in runs and count
    little, and the margin keeps out the values a small perturbation leaves at 0 or 1 inside them (an attack of
    ``eps`` 0.01 moves their neighbours by about that much); impulse noise of amount ``a`` reads somewhat under
    ``a`` (dots on values near their own extreme do not count), clipped Gaussian noise reads some too. Images
    narrower than 3 pixels read 0.

    Shape: ``(N, C, H, W)`` in [0, 1] -> ``(N,)`` in [0, 1].
    """
    if images.shape[-1] < 3:
        return images.new_zeros(images.shape[0])
    rows = images[..., ::4, :]
    middle = rows[..., 1:-1]
    apart = ((rows[..., :-2] - middle).abs() > margin) & ((rows[..., 2:] - middle).abs() > margin)
    isolated = ((middle == 0) | (middle == 1)) & apart
    return isolated.to(images.dtype).mean(dim=(1, 2, 3))


def remove_impulses(images: torch.Tensor, passes: int = 2) -> torch.Tensor:
    """Replace every dot, a channel value exactly 0 or 1 that at most 2 of its 8 neighbours (same channel, borders
    replicated) share, by the mean of its neighbours that are neither 0 nor 1, or by the mean of all 8 where none is
    (a pepper dot inside a clipped highlight becomes the highlight): a switching mean filter that undoes
    salt-and-pepper noise and leaves every other value, clipped highlights and shadows among them, as it is.
    ``passes`` times: dense dots come in clumps (ImageNet-C's severity 5 flips 27% of the values), and a clump's
    last dots are isolated once the others are gone. Shifted sums, no convolution (exports to ONNX).

    Shape: ``(N, C, H, W)`` in [0, 1] -> same, in [0, 1].
    """
    for _ in range(passes):
        images = _remove_isolated_extremes(images)
    return images


def _remove_isolated_extremes(images: torch.Tensor) -> torch.Tensor:
    """One pass of :func:`remove_impulses`."""
    height, width = images.shape[-2:]
    padded = F.pad(images, (1, 1, 1, 1), mode="replicate")
    valid = ((padded > 0) & (padded < 1)).to(images.dtype)
    kept = padded * valid
    neighbours = [(dy, dx) for dy in range(3) for dx in range(3) if (dy, dx) != (1, 1)]
    total = sum(padded[..., dy : dy + height, dx : dx + width] for dy, dx in neighbours)
    kept_total = sum(kept[..., dy : dy + height, dx : dx + width] for dy, dx in neighbours)
    count = sum(valid[..., dy : dy + height, dx : dx + width] for dy, dx in neighbours)
    same = sum((padded[..., dy : dy + height, dx : dx + width] == images).to(images.dtype) for dy, dx in neighbours)
    estimate = torch.where(count > 0, kept_total / count.clamp_min(1), total / len(neighbours))
    return torch.where(((images == 0) | (images == 1)) & (same <= 2), estimate, images)


def unsharp_mask(images: torch.Tensor, sigma: float, amount: float) -> torch.Tensor:
    """``x + amount * (x - G_sigma(x))``, clipped to [0, 1]: the classic unsharp mask, :func:`gaussian_blur` of
    ``sigma`` pixels subtracted to lift the detail a blur weakened. No training, no weights; it undoes no blur exactly, but restores the fine contrast a classifier reads.

    Shape: ``(N, C, H, W)`` in [0, 1] -> same, in [0, 1].
    """
    return (images + amount * (images - gaussian_blur(images, sigma))).clamp(0, 1)


def gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """A Gaussian blur of standard deviation ``sigma`` pixels (radius ``ceil(3 sigma)``, borders replicated), as
    separable shifted sums: no convolution, so it exports to ONNX and runs fast on these few taps.

    Shape: ``(N, C, H, W)`` -> same.
    """
    radius = max(1, math.ceil(3 * sigma))
    weights = [math.exp(-0.5 * (k / sigma) ** 2) for k in range(-radius, radius + 1)]
    weights = [w / sum(weights) for w in weights]
    height, width = images.shape[-2:]
    padded = F.pad(images, (radius, radius, 0, 0), mode="replicate")
    blurred = sum(w * padded[..., :, k : k + width] for k, w in enumerate(weights))
    padded = F.pad(blurred, (0, 0, radius, radius), mode="replicate")
    return sum(w * padded[..., k : k + height, :] for k, w in enumerate(weights))


def deblur_share(
    x: torch.Tensor,
    sharpness_range: tuple[float, float],
    ratio_range: tuple[float, float] | None = None,
    always: bool = True,
) -> torch.Tensor:
    """How much of a deblurring purifier's correction each image gets, by its :func:`sharpness`
    ``h``: 1 at ``h`` up to ``sharpness_range[0]``, falling linearly to 0 at ``sharpness_range[1]`` and above; with
    ``ratio_range``, times a share by its :func:`blur_ratio` ``b``: 0 at ``b`` up to
    ``ratio_range[0]``, rising linearly to 1 at ``ratio_range[1]`` and above. Unless ``always`` (training,
    tracing), the blur ratio is measured only on the images whose sharpness share is above 0 (the others' share is 0
    whatever it reads), so clean traffic pays for the sharpness alone: the same shares.

    Shape: ``(N, C, H, W)`` in [0, 1] -> ``(N,)`` in [0, 1].
    """
    low, high = sharpness_range
    sharp = sharpness(x)
    share = _falling(sharp, low, high)
    if ratio_range is None:
        return share
    low, high = ratio_range
    return _times_where_shared(share, lambda images, h: _rising(blur_ratio(images, h), low, high), always, x, sharp)


def impulse_share(
    x: torch.Tensor,
    impulse_range: tuple[float, float],
    noise_range: tuple[float, float] | None = None,
    always: bool = True,
) -> torch.Tensor:
    """How much of :func:`remove_impulses`'s correction each image gets, by its
    :func:`impulse_fraction` ``f``: 0 at ``f`` up to ``impulse_range[0]``, rising linearly to 1
    at ``impulse_range[1]`` and above; with ``noise_range``, times a share by the
    :func:`noise_level` ``s`` of the image with its dots removed: 1 at ``s`` up to
    ``noise_range[0]``, falling linearly to 0 at ``noise_range[1]`` and above. Salt and pepper leaves the other
    values clean, so ``s`` reads low; Gaussian or shot noise, whose clipped values also read as dots, stays noisy
    and is left to the denoiser. Unless ``always`` (training, tracing), ``s`` is measured only on the images whose
    fraction share is above 0 (the same shares).

    Shape: ``(N, C, H, W)`` in [0, 1] -> ``(N,)`` in [0, 1].
    """
    if noise_range is None:
        return _rising(impulse_fraction(x), *impulse_range)
    return clean_impulses(x, impulse_range, noise_range, always)[1]


def clean_impulses(
    x: torch.Tensor,
    impulse_range: tuple[float, float],
    noise_range: tuple[float, float] | None = None,
    always: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``x`` with its dots removed as much as :func:`impulse_share` says, ``x + share * (remove_impulses(x) - x)``
    per image, and that share. :func:`remove_impulses` runs once, its result serving both the noise check and the
    output; unless ``always`` (training, tracing), only on the images whose fraction share is above 0, and a batch
    with none returns ``x`` itself.

    Shape: ``(N, C, H, W)`` in [0, 1] -> ``(N, C, H, W)`` in [0, 1] and ``(N,)`` in [0, 1].
    """
    share = _rising(impulse_fraction(x), *impulse_range)
    index = None if always else (share > 0).nonzero().flatten()
    if index is not None and not len(index):
        return x, share
    images, shared = (x, share) if index is None else (x[index], share[index])
    cleaned = remove_impulses(images)
    if noise_range is not None:
        shared = shared * _falling(noise_level(cleaned), *noise_range)
    out = images + shared.view(-1, 1, 1, 1) * (cleaned - images)
    if index is None:
        return out, shared
    return x.index_copy(0, index, out), share.index_copy(0, index, shared)


def _rising(values: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """0 at ``values`` up to ``low``, rising linearly to 1 at ``high`` and above."""
    return ((values - low) / (high - low)).clamp(0, 1)


def _falling(values: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """1 at ``values`` up to ``low``, falling linearly to 0 at ``high`` and above."""
    return ((high - values) / (high - low)).clamp(0, 1)


def _times_where_shared(
    share: torch.Tensor, factor: Callable[..., torch.Tensor], always: bool, x: torch.Tensor, *per_image: torch.Tensor
) -> torch.Tensor:
    """``share * factor(x, *per_image)`` per image; unless ``always`` (training, tracing), ``factor`` reads only the
    images whose share is above 0 (the others' product is 0 whatever it says). ``per_image``: ``(N, ...)`` tensors
    indexed along with ``x``."""
    if always:
        return share * factor(x, *per_image)
    index = (share > 0).nonzero().flatten()
    if not len(index):
        return share
    return share.index_copy(0, index, share[index] * factor(x[index], *(t[index] for t in per_image)))
