"""STL: the sparse transformation layer of Sun et al., CVPR 2019 ("Adversarial defense by stratified
convolutional sparse coding"), as a batched torch transform.

Per image: a Tikhonov low/high split, convolutional basis pursuit denoising (ConvBPDN) of the high part
over a dictionary of unit-norm filters learned on natural images, and output = low + reconstruction
(the projection onto the "quasi-natural" image space). The solver is the FFT-domain ADMM of Wohlberg
(IEEE TIP 2016) with the options of sporco's ``admm.cbpdn.ConvBPDN`` that the authors' code
(GitBoSun/AdvDefense_CSC, ``recons_data.py``) runs.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import torch

from ..transform import PixelDefense

__all__ = [
    "STL",
    "DICTIONARY_FILE",
    "conv_bpdn",
    "conv_reconstruct",
    "load_dictionary",
    "symmetric_pad",
    "tikhonov_split",
]

logger = logging.getLogger(__name__)

#: Shipped dictionaries, relative to :func:`recondefense.weights.weights_root`: keys ``"rgb"``
#: ``(64, 3, 8, 8)`` and ``"gray"`` ``(64, 1, 8, 8)``; see ``weights/stl/README.md``.
DICTIONARY_FILE = "stl/dictionary.safetensors"
DICTIONARY_SHA256 = "ed9cf6ad05fe87bc4ba344bdf466d0226920effdc6ee8af7fbebdbd4f9f5f5d5"


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


@dataclass
class _Spectrum:
    """Frequency-domain dictionary of one image size, factored for the ADMM x-step.

    ``dft``: ``(C, M, F)``, the filters' 2-D real FFTs (``F = H * (W // 2 + 1)``). ``proj``: ``(C, M, F)``,
    ``Q^H D`` with ``D D^H = Q diag(eig) Q^H`` per frequency; ``eig``: ``(C, F)``. With them
    ``(D^H D + rho I)^-1 b = (b - proj^H ((proj b) / (rho + eig))) / rho`` (Woodbury; ``C`` is 1 or 3).
    """

    dft: torch.Tensor
    proj: torch.Tensor
    eig: torch.Tensor
    size: tuple[int, int]


def _spectrum(dictionary: torch.Tensor, size: tuple[int, int]) -> _Spectrum:
    m, c, kh, kw = dictionary.shape
    h, w = size
    padded = dictionary.new_zeros(m, c, h, w)
    padded[..., :kh, :kw] = dictionary  # filters at the origin, as sporco zero-pads them
    dft = torch.fft.rfft2(padded).permute(1, 0, 2, 3).reshape(c, m, -1)  # (C, M, F)
    gram = torch.einsum("cmf,dmf->fcd", dft, dft.conj())  # (F, C, C) = D D^H per frequency
    eig, vec = torch.linalg.eigh(gram)  # eig (F, C), vec (F, C, C)
    proj = torch.einsum("fcd,cmf->dmf", vec.conj(), dft)  # rows of Q^H D
    return _Spectrum(dft=dft, proj=proj, eig=eig.clamp_min(0).transpose(0, 1).contiguous(), size=(h, w))


def conv_reconstruct(spectrum: _Spectrum, coef: torch.Tensor) -> torch.Tensor:
    """``sum_m d_m * x_m`` (circular convolution). Shape: ``(N, M, H, W)`` -> ``(N, C, H, W)``."""
    n, m, h, w = coef.shape
    cf = torch.fft.rfft2(coef).reshape(n, m, -1)
    sf = torch.einsum("cmf,nmf->ncf", spectrum.dft, cf)
    return torch.fft.irfft2(sf.reshape(n, -1, h, w // 2 + 1), s=(h, w))


def conv_bpdn(
    dictionary: torch.Tensor,
    signal: torch.Tensor,
    lmbda: float,
    *,
    max_iter: int = 200,
    rel_tol: float = 5e-3,
    rho: float | None = None,
    relax: float = 1.8,
    auto_rho: bool = True,
    spectrum: _Spectrum | None = None,
) -> torch.Tensor:
    """Convolutional basis pursuit denoising, batched: per image, ADMM on
    ``argmin_x 1/2 ||sum_m d_m * x_m - s||^2 + lmbda sum_m ||x_m||_1``.

    The iteration is sporco's ``admm.cbpdn.ConvBPDN`` with its defaults: circular boundary, one
    coefficient map per filter shared by all channels (a multi-channel dictionary), rho starting at
    ``50 lmbda + 1``, over-relaxation 1.8, residual-balancing rho per iteration (RsdlRatio 1.2, target
    ``1 + 18.3^(log10 lmbda + 1)``, automatic scaling capped at 1000), and the relative
    primal/dual-residual stopping rule. Each image has its own rho and stops on its own.

    Args:
        dictionary: ``(M, C, k, k)`` filters (``k <= H, W``).
        signal: ``(N, C, H, W)`` images to code (the high-frequency parts, for STL).
        lmbda: weight of the l1 term.
        max_iter: ADMM iterations at most.
        rel_tol: relative residual tolerance (sporco's ``RelStopTol``).
        rho: initial penalty (default ``50 lmbda + 1``).
        relax: over-relaxation parameter (sporco's ``RelaxParam``).
        auto_rho: adapt rho by residual balancing (sporco's ``AutoRho``).
        spectrum: a precomputed factorization of ``dictionary`` for this image size.

    Returns:
        ``(N, M, H, W)`` sparse coefficient maps (sporco's ``Y``, the variable its solve returns).
    """
    return _admm(dictionary, signal, lmbda, max_iter, rel_tol, rho, relax, auto_rho, spectrum, None)[0]


def _admm(
    dictionary: torch.Tensor,
    signal: torch.Tensor,
    lmbda: float,
    max_iter: int,
    rel_tol: float,
    rho: float | None,
    relax: float,
    auto_rho: bool,
    spectrum: _Spectrum | None,
    state: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`conv_bpdn`, warm-startable: ``state`` and the result are ``(y, u, rho)`` per image."""
    n, c, h, w = signal.shape
    m = dictionary.shape[0]
    if spectrum is None or spectrum.size != (h, w):
        spectrum = _spectrum(dictionary, (h, w))
    dft, proj, eig = spectrum.dft, spectrum.proj, spectrum.eig
    shape_f = (h, w // 2 + 1)
    sf = torch.fft.rfft2(signal).reshape(n, c, -1)
    dhs = torch.einsum("cmf,ncf->nmf", dft.conj(), sf)  # D^H s, (N, M, F)

    rho0 = 50.0 * lmbda + 1.0 if rho is None else float(rho)
    xi = 1.0 + 18.3 ** (math.log10(lmbda) + 1.0) if lmbda > 0 else 1.0
    tau, mu = 1000.0, 1.2

    if state is None:
        y = signal.new_zeros(n, m, h, w)
        u = torch.zeros_like(y)
        rhos = signal.new_full((n,), rho0)
    else:
        y, u, rhos = (t.clone() for t in state)
    out_y, out_u, out_rho = torch.empty_like(y), torch.empty_like(u), torch.empty_like(rhos)
    active = torch.arange(n, device=signal.device)
    proj_conj = proj.conj().resolve_conj()

    def norm(z: torch.Tensor) -> torch.Tensor:
        return torch.linalg.vector_norm(z.flatten(1), dim=1)

    # Buffers are reused across iterations (large tensors; fresh allocations page-fault every time).
    y_prev, x = torch.empty_like(y), torch.empty_like(y)
    bf = torch.empty(n, m, *shape_f, dtype=dhs.dtype, device=dhs.device)
    for k in range(max_iter):
        na = len(active)
        y, y_prev = y_prev, y
        r4 = rhos.view(-1, 1, 1, 1)
        # x-step: (D^H D + rho I) x = D^H s + rho (y - u), per frequency (Woodbury with C x C blocks).
        torch.fft.rfft2(torch.sub(y_prev, u, out=x), out=bf)
        b = bf.view(na, m, -1)
        b.mul_(r4.view(-1, 1, 1)).add_(dhs)
        t = torch.einsum("cmf,nmf->ncf", proj, b).div_(rhos.view(-1, 1, 1) + eig)
        for ci in range(c):
            b.addcmul_(proj_conj[ci], t[:, ci : ci + 1], value=-1)
        b.div_(r4.view(-1, 1, 1))
        torch.fft.irfft2(bf, s=(h, w), out=x)
        # Relaxed y- and u-steps: v = relax x + (1 - relax) y_prev + u; y = soft(v, lmbda / rho); u = v - y.
        u.add_(x, alpha=relax).add_(y_prev, alpha=1 - relax)
        thresh = (lmbda / rhos).view(-1, 1, 1, 1)
        torch.clamp(u, -thresh, thresh, out=y)
        torch.sub(u, y, out=y)
        u.sub_(y)
        # Residuals normalized as sporco does (StdResiduals False, AbsStopTol 0).
        rn = torch.maximum(norm(x), norm(y))
        rn = torch.where(rn == 0, torch.ones_like(rn), rn)
        sn = rhos * norm(u)
        sn = torch.where(sn == 0, torch.ones_like(sn), sn)
        r = norm(x.sub_(y)) / rn
        s = rhos * norm(y_prev.sub_(y)) / sn
        if auto_rho and k != 0:
            ratio = torch.where(r > s * xi, r / (s * xi), (s * xi) / r)
            mult = torch.where((r == 0) | (s == 0), torch.full_like(r, tau), ratio.sqrt().clamp(max=tau))
            one = torch.ones_like(r)
            scale = torch.where(r > xi * mu * s, mult, torch.where(s > (mu / xi) * r, 1 / mult, one))
            rhos = rhos * scale
            u.div_(scale.view(-1, 1, 1, 1))
        done = (r < rel_tol) & (s < rel_tol)
        if k == max_iter - 1:
            done = torch.ones_like(done)
        if bool(done.any()):
            out_y[active[done]], out_u[active[done]], out_rho[active[done]] = y[done], u[done], rhos[done]
            keep = ~done
            if not bool(keep.any()):
                logger.debug("conv_bpdn: last image stopped at iteration %d", k + 1)
                break
            active, y, u, rhos, dhs = active[keep], y[keep], u[keep], rhos[keep], dhs[keep]
            y_prev, x, bf = y_prev[keep], x[keep], bf[keep]
    return out_y, out_u, out_rho


def load_dictionary(channels: int = 3, path: str | Path | None = None) -> torch.Tensor:
    """The shipped STL dictionary for ``channels`` (3: ``"rgb"``, 1: ``"gray"``): ``(64, C, 8, 8)``, float32."""
    from safetensors.torch import load_file

    from ..weights import verify_sha256, weights_root

    key = {3: "rgb", 1: "gray"}.get(channels)
    if key is None:
        raise ValueError(
            f"STL ships dictionaries for 1- and 3-channel images, got {channels} channels: "
            "pass your own with STL(dictionary=...) (learn one with python -m recondefense.baselines.stl_dictionary)"
        )
    file = Path(path) if path is not None else weights_root() / DICTIONARY_FILE
    if not file.is_file():
        raise FileNotFoundError(
            f"STL dictionary {file} is missing: reinstall recondefense or rebuild it with "
            "python -m recondefense.baselines.stl_dictionary --out weights/stl/dictionary.safetensors"
        )
    if path is None:  # the shipped file is sha256-pinned like every shipped weight
        verify_sha256(file, DICTIONARY_SHA256, "STL dictionary")
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
        spectrum = _spectrum(filters, tuple(high.shape[-2:]))
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
