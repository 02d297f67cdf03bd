"""DeepFool (Moosavi-Dezfooli et al., CVPR 2016), L2, batched over images and classes."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from .base import Attack, check_count, check_number

__all__ = ["DeepFool", "DeepFoolResult"]


class DeepFoolResult(NamedTuple):
    """What :meth:`DeepFool.run` returns; all tensors are on the model's device.

    - ``adv``: ``(N, C, H, W)`` adversarial images in [0, 1] (misclassified inputs unchanged);
    - ``fooled``: ``(N,)`` bool, attacked and misclassified at the end;
    - ``misclassified``: ``(N,)`` bool, misclassified before the attack, so left unattacked;
    - ``steps``: ``(N,)`` int64, DeepFool steps (linearizations) spent on each image.
    """

    adv: torch.Tensor
    fooled: torch.Tensor
    misclassified: torch.Tensor
    steps: torch.Tensor


class DeepFool(Attack):
    """Minimal L2 perturbation crossing the nearest linearized decision boundary, iterated.

    Paper defaults (Table 1): ``steps=50, overshoot=0.02``, attacked with ground-truth labels.
    Each step linearizes the logit differences ``f_k - f_label`` at the current point, steps to
    the nearest boundary, and sets ``x = clip(x0 + (1 + overshoot) * r_total)`` (the original
    paper's and foolbox's form); an image stops as soon as it is misclassified. Images already
    misclassified are returned unchanged and reported in :attr:`DeepFoolResult.misclassified`.

    Fully batched: one forward and ``k - 1`` backward passes per step for the whole batch (the
    gradient of ``sum_n (f_k - f_label)[n]`` is each image's own gradient, since images do not
    interact in eval mode); only images not yet fooled are computed. ``candidates=k`` restricts the
    search to the label plus the ``k - 1`` highest-scoring other classes on the clean image, as
    foolbox and ART do (foolbox's default is 10); None uses all classes like ``torchattacks.DeepFool``.

    Args:
        model: pixel-space classifier, ``(N, C, H, W)`` in [0, 1] -> ``(N, classes)`` logits.
        steps: maximum number of steps.
        overshoot: relative overshoot of the total perturbation.
        candidates: number of classes considered (label included), or None for all.
        grad_chunk: classes per vmapped backward pass (``is_grads_batched``); 1 runs one plain
            backward pass per class, which works with every model and is the default.

    Shape: ``(N, C, H, W)`` in [0, 1], labels ``(N,)`` (ground truth, or None: the model's own
    predictions) -> ``(N, C, H, W)`` in [0, 1].
    """

    def __init__(
        self,
        model: nn.Module,
        steps: int = 50,
        overshoot: float = 0.02,
        candidates: int | None = None,
        *,
        grad_chunk: int = 1,
    ) -> None:
        super().__init__(model)
        self.steps = check_count("steps", steps)
        self.overshoot = check_number("overshoot", overshoot)
        if candidates is not None:
            candidates = check_count("candidates", candidates)
            if candidates < 2:
                raise ValueError(
                    f"expected candidates >= 2 (the label and at least one other class) or None, got {candidates}"
                )
        self.candidates = candidates
        self.grad_chunk = check_count("grad_chunk", grad_chunk, minimum=1)

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self._deepfool(images, labels).adv

    def run(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> DeepFoolResult:
        """Attack and report: like calling the attack, but returns a :class:`DeepFoolResult`."""
        result = self._run(self._deepfool, images, labels)
        return result._replace(adv=result.adv.squeeze(0)) if images.ndim == 3 else result

    def _deepfool(self, images: torch.Tensor, labels: torch.Tensor) -> DeepFoolResult:
        x0 = images
        n = len(x0)
        with torch.no_grad():
            logits0 = self._logits(x0)
        classes = logits0.shape[1]
        if classes < 2:
            raise ValueError(f"DeepFool needs a model with at least 2 classes, got {classes}")
        k = classes if self.candidates is None else min(self.candidates, classes)
        others = logits0.scatter(1, labels[:, None], float("-inf")).topk(k - 1, dim=1).indices
        candidates = torch.cat([labels[:, None], others], dim=1)  # (N, k), label first

        misclassified = logits0.argmax(1) != labels
        fooled = torch.zeros(n, dtype=torch.bool, device=x0.device)
        steps = torch.zeros(n, dtype=torch.long, device=x0.device)
        adv = x0.clone()
        r_total = torch.zeros_like(x0)
        active = (~misclassified).nonzero().squeeze(1)  # indices of images still to attack
        for _ in range(self.steps):
            if active.numel() == 0:
                break
            x, logits = self._forward(adv[active])
            still = logits.argmax(1) == labels[active]
            if not still.all():  # some crossed the boundary at the last step: stop them, recompute the rest
                fooled[active[~still]] = True
                active = active[still]
                if active.numel() == 0:
                    break
                x, logits = self._forward(adv[active])
            picked = logits.gather(1, candidates[active])
            diffs = picked[:, 1:] - picked[:, :1]  # (M, k - 1): f_k - f_label < 0
            step = self._nearest_boundary_step(diffs, x)
            r_total[active] += step
            adv[active] = (x0[active] + (1 + self.overshoot) * r_total[active]).clamp(0, 1)
            steps[active] += 1
        if active.numel():
            with torch.no_grad():
                fooled[active] = self._logits(adv[active]).argmax(1) != labels[active]
        return DeepFoolResult(adv.detach(), fooled, misclassified, steps)

    def _forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = x.detach().requires_grad_(True)
        return x, self._logits(x)

    def _nearest_boundary_step(self, diffs: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Step to the nearest linearized boundary, streaming over candidate classes (memory O(M image))."""
        m, others = diffs.shape
        values = diffs.detach().abs()
        best_dist = torch.full((m,), float("inf"), dtype=values.dtype, device=x.device)
        best_grad = torch.zeros_like(x)
        best_norm = torch.ones(m, dtype=values.dtype, device=x.device)
        for start in range(0, others, self.grad_chunk):
            stop = min(start + self.grad_chunk, others)
            if stop - start == 1:
                (grads,) = torch.autograd.grad(diffs[:, start].sum(), x, retain_graph=True)
                grads = grads[None]
            else:
                basis = torch.zeros(stop - start, m, others, dtype=diffs.dtype, device=x.device)
                basis[torch.arange(stop - start), :, torch.arange(start, stop)] = 1
                (grads,) = torch.autograd.grad(diffs, x, basis, retain_graph=True, is_grads_batched=True)
            for offset, grad in enumerate(grads):
                norm = grad.flatten(1).norm(dim=1)
                dist = values[:, start + offset] / (norm + 1e-8)
                better = dist < best_dist
                best_dist = torch.where(better, dist, best_dist)
                best_norm = torch.where(better, norm, best_norm)
                best_grad = torch.where(better.view(-1, *([1] * (x.ndim - 1))), grad, best_grad)
        # + 1e-4 as in the original implementation, to step just past the boundary.
        scale = (best_dist + 1e-4) / (best_norm + 1e-8)
        return scale.view(-1, *([1] * (x.ndim - 1))) * best_grad
