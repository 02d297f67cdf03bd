"""The benchmarks (tiers): test data, target and transfer classifiers, defenses and attack parameters.

One :class:`Tier` per table; :data:`TIERS` by name. Attack parameters (pixels in [0, 1]) follow the paper's
Table 1 rule and live only here.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from ..budgets import FASHION_MNIST, IMAGENET

__all__ = [
    "ATTACK_NAMES",
    "BASELINES",
    "CONSENSUS_CLASSIFIERS",
    "DEFAULT_ATTACKS",
    "HELDOUT_GRID",
    "OBLIVIOUS",
    "TIERS",
    "Tier",
    "VALIDATION_CONSENSUS_CLASSIFIERS",
    "object_test_set",
]

#: Baseline defenses by short name (class in :mod:`recondefense.baselines`).
BASELINES = {
    "pd": "PixelDeflection",
    "rrp": "RandomResizePad",
    "fd": "FeatureDistillation",
    "stl": "STL",
    "jpeg": "JPEG",
    "bitdepth": "BitDepth",
}
ATTACK_NAMES = {
    "none": "No attack",
    "fgsm": "FGSM",
    "pgd": "PGD",
    "deepfool": "DeepFool",
    "pgd-e2e": "PGD end-to-end",
    "autoattack": "AutoAttack e2e",
}
OBLIVIOUS = ("none", "fgsm", "pgd", "deepfool")
#: What ``recondefense evaluate`` runs when ``--attacks`` is not given (the paper's columns and end-to-end PGD).
DEFAULT_ATTACKS = ("none", "fgsm", "pgd", "deepfool", "pgd-e2e")
#: The held-out tier's crops per photo side: 4 x 4 crops of each of the 8 held-out photos = 128 crops.
HELDOUT_GRID = 4
#: The classifiers whose agreement on a clean crop labels the ``imagenet-objects`` tier.
CONSENSUS_CLASSIFIERS = ("imagenet-efficientnet_lite0", "imagenet-efficientnet_lite1", "imagenet-efficientnet_lite2")
#: Those that label its validation crops (``imagenet-objects-val``): the training classifiers, Lite1 never.
VALIDATION_CONSENSUS_CLASSIFIERS = ("imagenet-efficientnet_lite0", "imagenet-efficientnet_lite2")


@functools.lru_cache(maxsize=2)
def object_test_set(split: str = "test") -> Dataset:
    """The fixed crops of the object photographs of ``split`` (:func:`~recondefense.data.object_test_crops`) on
    which the consensus classifiers agree, labelled with their class (a :class:`~recondefense.data.Consensus`; its
    ``dropped`` counts the others).

    ``"test"``: the ``imagenet-objects`` tier, labelled by EfficientNet-Lite0, -Lite1 and -Lite2
    (:data:`CONSENSUS_CLASSIFIERS`); ``"val"``: ``imagenet-objects-val``, the same kind of crops of the validation
    split's sources, where choices are made, labelled by Lite0 and Lite2 (:data:`VALIDATION_CONSENSUS_CLASSIFIERS`).
    The labels are computed once (minutes on 2 CPU cores) and kept in :func:`~recondefense.files.cache_dir`, keyed
    by a digest of the crops' pixels and the classifiers' names.

    Raises:
        ValueError: ``split`` is neither ``"test"`` nor ``"val"`` (the train split's sources are trained on).
    """
    import hashlib

    from .. import data
    from ..classifiers import load_classifier
    from ..files import cache_dir, write_atomic

    if split not in ("test", "val"):
        raise ValueError(f"object crops of split {split!r}: expected 'test' or 'val' (the train split is trained on)")
    names = CONSENSUS_CLASSIFIERS if split == "test" else VALIDATION_CONSENSUS_CLASSIFIERS
    crops = data.object_test_crops(sources=data.object_sources(split))
    digest = hashlib.sha256(crops.images.numpy().tobytes() + ",".join(names).encode()).hexdigest()
    path = cache_dir() / "consensus" / f"imagenet-objects-{digest[:16]}.pt"
    if path.is_file():
        stored = torch.load(path, weights_only=True)
        return data.Consensus(crops, stored["kept"], stored["labels"])
    consensus = data.label_by_consensus(crops, [load_classifier(name) for name in names])
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, functools.partial(torch.save, {"kept": consensus.kept, "labels": consensus.labels}))
    return consensus


@dataclass(frozen=True)
class Tier:
    """A benchmark: test data, target and transfer classifiers, and the attack parameters (one place).

    Attack parameters follow the paper's Table 1 rule: each attack cuts the target's validation
    accuracy by at least half, with a perturbation not obvious to the eye.
    """

    name: str
    dataset: str
    classifier: str
    transfer_classifier: str | None
    fgsm: dict[str, Any]
    pgd: dict[str, Any]
    deepfool: dict[str, Any]
    defenses: tuple[str, ...]
    notes: str = ""
    eot_samples: int = 8
    num_classes: int = 10
    #: images per batch; EOT attacks and DeepFool multiply it (memory). The randomized baselines draw per image
    #: (:mod:`recondefense.seeding`): their cells do not depend on it
    batch_size: int = 250
    baseline_args: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: the test images' (channels, height, width), pixels in [0, 1]: what a classifier of this tier must take
    image_shape: tuple[int, int, int] = (1, 28, 28)

    def test_set(self, classifier: nn.Module | None = None) -> Dataset:
        """The tier's test images in [0, 1] with labels. ``heldout-photos`` has no labels of its own: they
        are ``classifier``'s clean predictions (accuracy there = agreement with the undefended classifier)."""
        from .. import data

        if self.dataset == "fashionmnist":
            return data.fashion_mnist("test")
        if self.dataset == "imagenet-samples":
            return data.imagenet_samples()
        if self.dataset == "heldout-photos":
            if classifier is None:
                raise ValueError(f"tier {self.name!r} labels its photos with the classifier: pass classifier=")
            return data.label_with_classifier(data.heldout_photos(grid=HELDOUT_GRID), classifier)
        if self.dataset == "object-photos":
            return object_test_set()
        if self.dataset == "object-photos-val":
            return object_test_set("val")
        raise ValueError(f"tier {self.name!r}: unknown dataset {self.dataset!r}")

    def describe(self, attacks: Sequence[str] | None = None) -> str:
        """The parameters of ``attacks`` (None: those of ``recondefense evaluate``'s default, none, fgsm, pgd,
        deepfool and pgd-e2e) as one line, printed with every table: only what was run is described."""
        attacks = list(DEFAULT_ATTACKS) if attacks is None else list(attacks)
        candidates = f", top-{self.deepfool['candidates']} classes" if self.deepfool.get("candidates") else ""
        pgd = f"eps={self.pgd['eps']}, step={self.pgd['alpha']}, {self.pgd['steps']} steps, no random start"
        parts = {
            "fgsm": f"FGSM eps={self.fgsm['eps']}",
            "pgd": f"PGD {pgd}",
            "deepfool": f"DeepFool overshoot={self.deepfool['overshoot']}, {self.deepfool['steps']} steps{candidates}, "
            "ground-truth labels",
            "pgd-e2e": ("PGD e2e: the same PGD" if "pgd" in attacks else f"PGD e2e: PGD {pgd}")
            + " through the defended pipeline (exact gradients through the AE, BPDA for non-differentiable "
            f"defenses, EOT over {self.eot_samples} draws for randomized ones)",
            "autoattack": f"AutoAttack e2e: torchattacks' standard Linf AutoAttack, eps={self.pgd['eps']}, through the "
            "defended pipeline",
        }
        said = [parts[a] for a in dict.fromkeys(attacks) if a in parts]
        return "; ".join(said) + ("." if said else "") + (" " if said else "") + "Pixel values in [0, 1]."


#: The benchmarks by name: ``fashionmnist``, ``imagenet-photos``, ``imagenet-heldout``, ``imagenet-objects``.
TIERS: dict[str, Tier] = {
    "fashionmnist": Tier(
        name="fashionmnist",
        dataset="fashionmnist",
        classifier="fashionmnist-smallcnn",
        transfer_classifier="fashionmnist-resnet8",
        # Chosen on the validation split (1,000 images): clean 0.924 -> FGSM 0.429, PGD 0.228 (Table 1 rule).
        fgsm=FASHION_MNIST.fgsm,
        pgd=FASHION_MNIST.pgd,
        deepfool={"steps": 50, "overshoot": 0.02},
        # Pixel deflection's ImageNet settings (200 deflections, window 10 at 224 px) scaled to 28 x 28 by
        # pixel count and side: unscaled, they overwrite a quarter of the image (clean accuracy 0.42).
        baseline_args={"pd": {"deflections": round(200 * 28 * 28 / 224**2), "window": max(1, round(10 * 28 / 224))}},
        defenses=(
            "none",
            *BASELINES,
            "fashionmnist-smallcnn-fgsm",
            "fashionmnist-smallcnn-pgd",
            "fashionmnist-smallcnn-adaptive",
        ),
        notes="Fashion-MNIST test set (10,000 images, never used for training or model selection).",
    ),
}
#: ImageNet tier: EfficientNet-Lite0 (target) and Lite2 (transfer), the paper's Table 1 attacks at 224 px.
#: EfficientNet-Lite1 is never trained against: ``--classifier imagenet-efficientnet_lite1`` is the unseen column.
_IMAGENET = {
    "classifier": "imagenet-efficientnet_lite0",
    "transfer_classifier": "imagenet-efficientnet_lite2",
    "fgsm": IMAGENET.fgsm,
    "pgd": IMAGENET.pgd,
    "deepfool": {"steps": 50, "overshoot": 0.02, "candidates": 10},
    "num_classes": 1000,
    "batch_size": 10,  # x 8 EOT draws x 224 px through Lite0 fits in a few GB
    "image_shape": IMAGENET.image_shape,
    "defenses": (
        "none",
        *BASELINES,
        "imagenet-efficientnet_lite0-fgsm",
        "imagenet-efficientnet_lite0-pgd",
        "imagenet-efficientnet_lite0_lite2-gated-pgd",
        "imagenet-efficientnet_lite0_lite2-gated2-pgd",
        "imagenet-efficientnet_lite0_lite2-objects-pgd",
        "imagenet-efficientnet_lite0_lite2-gated-objects-pgd",
        "imagenet-efficientnet_lite0_lite2-objects2-pgd",
        "imagenet-efficientnet_lite0_lite2-gated-objects2-pgd",
    ),
}
TIERS["imagenet-objects"] = Tier(
    name="imagenet-objects",
    dataset="object-photos",
    notes="Held-out object photographs (the test split of the Tux Paint cut-outs, composited onto test-split "
    "background photos, and of the GCompris photos; no source image shared with training), 224 px, labelled by the "
    "consensus top-1 of EfficientNet-Lite0, -Lite1 and -Lite2 on the clean crop (crops where they disagree are "
    "dropped): accuracy against those labels.",
    **_IMAGENET,
)
TIERS["imagenet-objects-val"] = Tier(
    name="imagenet-objects-val",
    dataset="object-photos-val",
    notes="Validation object photographs, where the ImageNet-tier choices are made (the val split of the Tux Paint "
    "cut-outs and GCompris photos, composited and cropped as the test tier; no source image shared with training "
    "or test), 224 px, labelled by the consensus top-1 of EfficientNet-Lite0 and -Lite2 (the training "
    "classifiers; Lite1 never sees it): accuracy against those labels.",
    **_IMAGENET,
)
TIERS["imagenet-photos"] = Tier(
    name="imagenet-photos",
    dataset="imagenet-samples",
    notes="The 20 labelled ImageNet photos of foolbox at 224 px (test only): accuracy against their labels.",
    **_IMAGENET,
)
TIERS["imagenet-heldout"] = Tier(
    name="imagenet-heldout",
    dataset="heldout-photos",
    notes="Held-out sample photos of scikit-image, scikit-learn and matplotlib, 4 x 4 fixed crops at 224 px, "
    "never trained on: agreement with the evaluated classifier's clean prediction.",
    **_IMAGENET,
)
