"""STL: the sparse transformation layer of Sun et al., CVPR 2019 ("Adversarial defense by stratified
convolutional sparse coding"), as a batched torch transform.

Per image: a Tikhonov low/high split, convolutional basis pursuit denoising (ConvBPDN) of the high part
over a dictionary of unit-norm filters learned on natural images, and output = low + reconstruction
(the projection onto the "quasi-natural" image space). The solver is the FFT-domain ADMM of Wohlberg
(IEEE TIP 2016) with the options of sporco's ``admm.cbpdn.ConvBPDN`` that the authors' code
(GitBoSun/AdvDefense_CSC, ``recons_data.py``) runs.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from ..transform import PixelDefense
from .stl_solver import Spectrum as Spectrum
from .stl_solver import admm as admm  # re-exported: the solver lived here before stl_solver.py
from .stl_solver import conv_bpdn, conv_reconstruct, dictionary_spectrum

__all__ = [
    "STL",
    "DICTIONARY_FILE",
    "conv_bpdn",
    "conv_reconstruct",
    "load_dictionary",
    "symmetric_pad",
    "tikhonov_split",
]

#: Shipped dictionaries, relative to :func:`recondefense.weights.weights_root` (registered with their sha256 in
#: :mod:`recondefense.shipped`): keys ``"rgb"`` ``(64, 3, 8, 8)`` and ``"gray"`` ``(64, 1, 8, 8)``; see
#: ``weights/stl/README.md``.
DICTIONARY_FILE = "stl/dictionary.safetensors"


def symmetric_pad(images: torch.Tensor, pad: int) -> torch.Tensor:
    """Pad the last two dimensions by ``pad`` with edge-including mirroring (numpy's ``"symmetric"``).

    Works for any image size, also when ``pad`` exceeds it (the mirroring repeats, as numpy does).
    Shape: ``(..., H, W)`` -> ``(..., H + 2 pad, W + 2 pad)``.
    """
    if pad <= 0:
        return images

    def index(n: int) -> torch.Tensor:
        i = torch.arange(-pad, n + pad, device=images.device) % (2 * n)
        return torch.where(i >= n, 2 * n - 1 - i, i)

    h, w = images.shape[-2:]
    return images.index_select(-2, index(h)).index_select(-1, index(w))


def tikhonov_split(images: torch.Tensor, lmbda: float = 5.0, pad: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """Split images into low- and high-frequency parts with a Tikhonov-regularized low-pass filter.

    The low part minimizes ``1/2 ||x - s||^2 + lmbda/2 sum_i ||G_i x||^2`` (``G_i`` the forward
    differences along each axis), solved in the Fourier domain on the symmetrically padded image, as
    ``sporco.signal.tikhonov_filter`` does. Shape: ``(..., H, W)`` -> two tensors ``(..., H, W)``;
    ``low + high == images``.
    """
    h, w = images.shape[-2:]
    padded = symmetric_pad(images, pad)
    ph, pw = padded.shape[-2:]
    real = padded.dtype
    fy = torch.fft.fftfreq(ph, device=images.device, dtype=real)
    fx = torch.fft.rfftfreq(pw, device=images.device, dtype=real)
    # |FFT of [-1, 1]|^2 = 2 - 2 cos(2 pi f) along each axis.
    gain = 1 + lmbda * ((2 - 2 * torch.cos(2 * math.pi * fy))[:, None] + (2 - 2 * torch.cos(2 * math.pi * fx))[None, :])
    low = torch.fft.irfft2(torch.fft.rfft2(padded) / gain, s=(ph, pw))
    low = low[..., pad : pad + h, pad : pad + w]
    return low, images - low


def load_dictionary(channels: int = 3, path: str | Path | None = None) -> torch.Tensor:
    """The STL dictionary for ``channels`` (3: ``"rgb"``, 1: ``"gray"``): ``(64, C, 8, 8)``, float32; the shipped one
    (the registry's ``"dictionary"`` ``"stl"``, sha256-pinned like every shipped artifact) unless ``path`` is given."""
    from safetensors.torch import load_file

    from ..weights import get_artifact

    entry = get_artifact("dictionary", "stl")
    key = dict(entry.keys).get(channels)
    if key is None:
        raise ValueError(
            f"STL ships dictionaries for 1- and 3-channel images, got {channels} channels: "
            "pass your own with STL(dictionary=...) (learn one with python -m recondefense.baselines.stl_dictionary)"
        )
    if path is not None:
        file = Path(path)
        if not file.is_file():
            raise FileNotFoundError(f"STL dictionary {file} is missing")
    else:
        try:
            file = entry.path() / entry.file
        except FileNotFoundError as err:
            raise FileNotFoundError(
                f"{err}, or rebuild it with python -m recondefense.baselines.stl_dictionary --out weights/{DICTIONARY_FILE}"
            ) from None
    return load_file(str(file))[key].float()


class STL(PixelDefense):
    """Sparse transformation layer (Sun et al., CVPR 2019): low-pass + convolutional sparse code of the rest.

    Per image ``s``: ``low, high = tikhonov_split(s, lowpass_lmbda, lowpass_pad)``; ``x = ConvBPDN(D, high,
    lmbda)`` (up to ``max_iter`` ADMM iterations, relative tolerance ``rel_tol``); output
    ``low + sum_m d_m * x_m``, clamped to [0, 1]. Deterministic; not differentiable (an iterative
    solver): BPDA uses the identity as :meth:`surrogate`.

    The defaults are those of the authors' ``recons_data.py``: 64 unit-norm 8x8xC filters, Tikhonov
    lambda 5 with a 16-pixel pad, ConvBPDN lambda 0.2 (the lambda their shipped ImageNet dictionaries
    were learned with; their README gives 0.1-0.3), 200 iterations, RelStopTol 5e-3, sporco's ADMM
    options. The shipped dictionaries (``weights/stl/``) are learned by
    ``python -m recondefense.baselines.stl_dictionary`` from the photo pool; 1-channel images use a
    grayscale dictionary learned the same way from the photos' luma.

    Deviations from the original code (GitBoSun/AdvDefense_CSC):

    - Dictionary: learned on 36 crops from 18 Debian ``opencv-doc`` photos instead of ImageNet (no
      ImageNet here; the authors' ``.npy`` bases are not redistributable through PyPI), with our own
      torch port of sporco's dictionary learning (alternating ConvBPDN and CCMOD ADMM steps).
    - The authors resize every input to a fixed square (224 for ImageNet) first; we code the image at
      its own size (the defense accepts any ``H, W``). Resize before the defense to reproduce theirs.
    - The authors write ``255 * out / out.max()`` to an 8-bit file (brightening images whose result
      peaks below 1, and quantizing); we clamp to [0, 1] and keep floats.
    - Solver: same algorithm and options as sporco's ConvBPDN, but the x-step uses an exact Woodbury
      solve (a ``C x C`` eigendecomposition per frequency) instead of sporco's iterated Sherman-Morrison
      (same solution up to rounding), and images of a batch run in lock-step with their own rho and
      their own stopping test. float16/bfloat16 inputs are solved in float32.
    - Images smaller than the filters (``H`` or ``W`` < 8) are symmetric-padded for the sparse coding
      and cropped back (sporco rejects them).

    Args:
        lmbda: ConvBPDN l1 weight.
        max_iter: ADMM iterations at most.
        rel_tol: ADMM relative stopping tolerance.
        lowpass_lmbda: Tikhonov low-pass regularization.
        lowpass_pad: symmetric padding for the low-pass filter, pixels.
        dictionary: ``(M, C, k, k)`` filters to use instead of the shipped ones (then only ``C``-channel
            images are accepted).
        max_batch: images solved together (bounds memory: about ``12 * max_batch * M * H * W * 4`` bytes).

    Shape: ``(C, H, W)`` or ``(N, C, H, W)`` with ``C`` in {1, 3} -> same. Values: [0, 1] -> [0, 1].
    """

    differentiable = False
    randomized = False

    def __init__(
        self,
        lmbda: float = 0.2,
        *,
        max_iter: int = 200,
        rel_tol: float = 5e-3,
        lowpass_lmbda: float = 5.0,
        lowpass_pad: int = 16,
        dictionary: torch.Tensor | None = None,
        max_batch: int = 8,
    ) -> None:
        super().__init__()
        if lmbda <= 0 or max_iter < 1 or rel_tol < 0 or lowpass_lmbda < 0 or lowpass_pad < 0 or max_batch < 1:
            raise ValueError(
                f"STL needs lmbda > 0, max_iter >= 1, rel_tol >= 0, lowpass_lmbda >= 0, lowpass_pad >= 0 and "
                f"max_batch >= 1, got lmbda={lmbda}, max_iter={max_iter}, rel_tol={rel_tol}, "
                f"lowpass_lmbda={lowpass_lmbda}, lowpass_pad={lowpass_pad}, max_batch={max_batch}"
            )
        self.lmbda = float(lmbda)
        self.max_iter = int(max_iter)
        self.rel_tol = float(rel_tol)
        self.lowpass_lmbda = float(lowpass_lmbda)
        self.lowpass_pad = int(lowpass_pad)
        self.max_batch = int(max_batch)
        if dictionary is not None:
            if dictionary.ndim != 4 or dictionary.shape[-1] != dictionary.shape[-2]:
                raise ValueError(f"expected a dictionary of shape (M, C, k, k), got {tuple(dictionary.shape)}")
            self.register_buffer("dictionary", dictionary.detach().float().clone())
            self._custom = True
        else:
            self.register_buffer("dictionary", load_dictionary(3))
            self.register_buffer("dictionary_gray", load_dictionary(1))
            self._custom = False

    @property
    def channels(self) -> int | None:
        """Channel count a custom dictionary requires; None (1 or 3) for the shipped ones."""
        return int(self.dictionary.shape[1]) if self._custom else None

    def _device(self) -> torch.device | None:
        return None  # no learned parameters: run wherever the input is

    def _filters(self, channels: int) -> torch.Tensor:
        if self._custom or channels == 3:
            return self.dictionary
        if channels == 1:
            return self.dictionary_gray
        raise ValueError(
            f"STL's shipped dictionaries cover 1- and 3-channel images, got {channels} channels: "
            "pass STL(dictionary=...) learned for that channel count"
        )

    @torch.no_grad()
    def purify(self, images: torch.Tensor) -> torch.Tensor:
        """Purify a floating ``(N, C, H, W)`` batch in [0, 1]; returns the same shape in [0, 1]."""
        dtype = images.dtype
        work = torch.float64 if dtype == torch.float64 else torch.float32
        x = images.to(work)
        n, c, h, w = x.shape
        filters = self._filters(c).to(device=x.device, dtype=work)
        k = filters.shape[-1]
        low, high = tikhonov_split(x, self.lowpass_lmbda, self.lowpass_pad)
        grow = max(0, k - min(h, w))
        if grow:
            high = symmetric_pad(high, grow)
        spectrum = dictionary_spectrum(filters, tuple(high.shape[-2:]))
        recon = torch.empty_like(high)
        for start in range(0, n, self.max_batch):
            part = high[start : start + self.max_batch]
            coef = conv_bpdn(filters, part, self.lmbda, max_iter=self.max_iter, rel_tol=self.rel_tol, spectrum=spectrum)
            recon[start : start + self.max_batch] = conv_reconstruct(spectrum, coef)
            del coef
        if grow:
            recon = recon[..., grow : grow + h, grow : grow + w]
        return (low + recon).clamp_(0, 1).to(dtype)

    def extra_repr(self) -> str:
        m, c, k, _ = self.dictionary.shape
        return (
            f"lmbda={self.lmbda}, max_iter={self.max_iter}, rel_tol={self.rel_tol}, "
            f"lowpass_lmbda={self.lowpass_lmbda}, lowpass_pad={self.lowpass_pad}, "
            f"dictionary={m}x{c}x{k}x{k}{' (custom)' if self._custom else ''}"
        )
