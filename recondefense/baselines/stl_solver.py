"""The sparse-coding solver of :class:`~recondefense.baselines.STL`: convolutional basis pursuit denoising
(ConvBPDN) by the FFT-domain ADMM of Wohlberg (IEEE TIP 2016), batched, with the options of sporco's
``admm.cbpdn.ConvBPDN``; also used by :mod:`.stl_dictionary` to learn the dictionaries.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import torch

__all__ = ["conv_bpdn", "conv_reconstruct"]

logger = logging.getLogger(__name__)


@dataclass
class Spectrum:
    """Frequency-domain dictionary of one image size, factored for the ADMM x-step.

    ``dft``: ``(C, M, F)``, the filters' 2-D real FFTs (``F = H * (W // 2 + 1)``). ``proj``: ``(C, M, F)``,
    ``Q^H D`` with ``D D^H = Q diag(eig) Q^H`` per frequency; ``eig``: ``(C, F)``. With them
    ``(D^H D + rho I)^-1 b = (b - proj^H ((proj b) / (rho + eig))) / rho`` (Woodbury; ``C`` is 1 or 3).
    """

    dft: torch.Tensor
    proj: torch.Tensor
    eig: torch.Tensor
    size: tuple[int, int]


def dictionary_spectrum(dictionary: torch.Tensor, size: tuple[int, int]) -> Spectrum:
    """The DFT of ``dictionary`` ``(M, C, kh, kw)`` zero-padded to ``size``, with its per-frequency projections:
    what the ADMM steps reuse."""
    m, c, kh, kw = dictionary.shape
    h, w = size
    padded = dictionary.new_zeros(m, c, h, w)
    padded[..., :kh, :kw] = dictionary  # filters at the origin, as sporco zero-pads them
    dft = torch.fft.rfft2(padded).permute(1, 0, 2, 3).reshape(c, m, -1)  # (C, M, F)
    gram = torch.einsum("cmf,dmf->fcd", dft, dft.conj())  # (F, C, C) = D D^H per frequency
    eig, vec = torch.linalg.eigh(gram)  # eig (F, C), vec (F, C, C)
    proj = torch.einsum("fcd,cmf->dmf", vec.conj(), dft)  # rows of Q^H D
    return Spectrum(dft=dft, proj=proj, eig=eig.clamp_min(0).transpose(0, 1).contiguous(), size=(h, w))


def conv_reconstruct(spectrum: Spectrum, coef: torch.Tensor) -> torch.Tensor:
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
    spectrum: Spectrum | None = None,
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
    return admm(dictionary, signal, lmbda, max_iter, rel_tol, rho, relax, auto_rho, spectrum, None)[0]


def admm(
    dictionary: torch.Tensor,
    signal: torch.Tensor,
    lmbda: float,
    max_iter: int,
    rel_tol: float,
    rho: float | None,
    relax: float,
    auto_rho: bool,
    spectrum: Spectrum | None,
    state: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`conv_bpdn`, warm-startable: ``state`` and the result are ``(y, u, rho)`` per image."""
    n, c, h, w = signal.shape
    m = dictionary.shape[0]
    if spectrum is None or spectrum.size != (h, w):
        spectrum = dictionary_spectrum(dictionary, (h, w))
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
