"""Attacks in [0, 1] pixel space: FGSM, PGD, batched DeepFool, and adaptive tools (BPDA, EOT).

Call like torchattacks: ``x_adv = attack(images, labels)``. Models take pixels in [0, 1]
(normalization inside, e.g. ``Defended(net, defense, mean=None, std=None)``). Paper defaults
(Table 1): FGSM ``eps=0.01``; PGD ``eps=0.01, alpha=0.004, steps=10``; DeepFool ``overshoot=0.02,
steps=50``. Attack a defense end to end with ``PGD(adaptive_model(defended), ...)``.
"""

from __future__ import annotations

from .adaptive import BPDA, EOT, adaptive_model
from .base import Attack, frozen
from .deepfool import DeepFool, DeepFoolResult
from .fgsm import FGSM
from .pgd import PGD

__all__ = ["Attack", "BPDA", "DeepFool", "DeepFoolResult", "EOT", "FGSM", "PGD", "adaptive_model", "frozen"]
