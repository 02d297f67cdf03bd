"""The attack budgets of the benchmark tiers, defined once: the registry of shipped weights (what each was
trained against) and the evaluation tiers (:mod:`recondefense.evaluate.tiers`) both read them.

Pixels in [0, 1]. Each budget follows the paper's Table 1 rule: the attack cuts the target's validation accuracy
by at least half, with a perturbation not obvious to the eye.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["AttackBudget", "FASHION_MNIST", "IMAGENET", "BUDGETS", "HELD_OUT_CORRUPTIONS"]


@dataclass(frozen=True)
class AttackBudget:
    """A tier's attack parameters and image shape.

    Attributes:
        name: the tier family, ``"fashionmnist"`` or ``"imagenet"``.
        eps: L-inf radius of FGSM and PGD.
        step: PGD step size.
        steps: PGD steps (no random start).
        image_shape: the images' ``(channels, height, width)``.
    """

    name: str
    eps: float
    step: float
    steps: int
    image_shape: tuple[int, int, int]

    @property
    def fgsm(self) -> dict[str, float]:
        """:class:`~recondefense.attacks.FGSM`'s keyword arguments."""
        return {"eps": self.eps}

    @property
    def pgd(self) -> dict[str, float | int]:
        """:class:`~recondefense.attacks.PGD`'s keyword arguments."""
        return {"eps": self.eps, "alpha": self.step, "steps": self.steps}


#: Fashion-MNIST, chosen on the validation split (1,000 images): clean 0.924 -> FGSM 0.429, PGD 0.228.
FASHION_MNIST = AttackBudget("fashionmnist", eps=0.04, step=0.016, steps=10, image_shape=(1, 28, 28))
#: The ImageNet tier at 224 px: the paper's Table 1 attacks (eps 0.01, 10 steps of 0.004).
IMAGENET = AttackBudget("imagenet", eps=0.01, step=0.004, steps=10, image_shape=(3, 224, 224))
#: The budgets by name.
BUDGETS = {b.name: b for b in (FASHION_MNIST, IMAGENET)}
#: The ImageNet-C corruptions never trained on, one per family (every tier's held-out half of the corruption
#: benchmark; the weights trained on corruptions record them as ``held_out_corruptions``).
HELD_OUT_CORRUPTIONS = ("impulse_noise", "motion_blur", "frost", "pixelate")
