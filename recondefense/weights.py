"""Registry of named pretrained defense weights shipped inside the package.

Names follow ``<dataset>-<classifier>-<training attack>``. Each entry points at a folder of the
repository's ``weights/`` directory (installed as the ``recondefense._weights`` package data) holding
``model.safetensors``, ``config.json`` and a model card ``README.md``; the sha256 digests of the
safetensors file and of config.json are checked on every load. The shipped entries are registered by
:mod:`recondefense.shipped` (imported with the package).
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
from typing import Any

from .budgets import AttackBudget
from .errors import CorruptWeightsError

__all__ = [
    "DEFAULT_ALIAS",
    "WeightsEntry",
    "WeightsNames",
    "close_names",
    "default_weights",
    "list_weights",
    "get_weights",
    "register_weights",
    "set_default_weights",
    "weights_root",
    "verify_sha256",
]

SAFETENSORS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
#: The fix for a shipped file that is missing or corrupt.
REINSTALL = "reinstall recondefense (pip install --force-reinstall recondefense)"


@dataclass(frozen=True)
class WeightsEntry:
    """One named set of shipped weights: typed, frozen, filled from the registration below; the numbers the
    training run measured are read from the folder's own config.json on first use (nothing is read at import).

    Attributes:
        name: registered name, e.g. ``"fashionmnist-smallcnn-pgd"``.
        folder: folder name under the shipped weights root.
        sha256: hex digest of ``model.safetensors``.
        config_sha256: hex digest of ``config.json`` (the architecture the tensors are loaded into).
        dataset: the training data (``"fashionmnist"``, ``"photos"``).
        classifier: the frozen classifier(s) trained against, comma-separated registered names.
        budget: the tier's attack parameters and image shape (:mod:`recondefense.budgets`).
        attack: what made the triplets (``"pgd"``, ``"gaussian:0.25"``, ``"pgd+corruption"``, ...).
        arch: the purifier architecture (:data:`recondefense.purifiers.ARCHITECTURES`).
        input_mean, input_std: the classifier's input normalization; None: it takes [0, 1] pixels.
        clean_fraction: the share of clean triplets, when not zero.
        adaptive: triplets attacked through the current AE.
        init_from: the shipped name training started from.
        composed_from: ``(("gate", name), ("inner", name))`` for weights put together by scripts/compose_gated.py.
        held_out_corruptions: corruptions never trained on.
    """

    name: str
    folder: str
    sha256: str
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

    def path(self) -> Path:
        """Folder holding the weights, verified against ``sha256`` (and ``config_sha256``).

        Raises:
            FileNotFoundError: a file is missing; CorruptWeightsError: another digest (both: reinstall).
        """
        folder = weights_root() / self.folder
        verify_sha256(folder / SAFETENSORS_FILE, self.sha256, f"weights {self.name!r}")
        if self.config_sha256 is not None:
            verify_sha256(folder / CONFIG_FILE, self.config_sha256, f"weights {self.name!r}")
        return folder

    @property
    def input_size(self) -> tuple[int, int, int] | None:
        """The images' ``(channels, height, width)`` (the budget's), or None when unknown."""
        return None if self.budget is None else self.budget.image_shape

    @property
    def run_meta(self) -> dict[str, Any]:
        """The ``meta`` the training run wrote into the folder's config.json (read once, on first use; empty when
        the folder is not installed)."""
        return dict(read_folder_json(self.folder, CONFIG_FILE).get("meta") or {})

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


_REGISTRY: dict[str, WeightsEntry] = {}


def weights_root() -> Path:
    """Directory of the shipped weights (the repository's ``weights/`` folder, installed as package data)."""
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


def register_weights(entry: WeightsEntry) -> None:
    """Add ``entry`` to the registry (a name may only be registered once)."""
    if entry.name in _REGISTRY:
        raise ValueError(f"weights {entry.name!r} are already registered")
    _REGISTRY[entry.name] = entry


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
    return WeightsNames(sorted(_REGISTRY), default_weights())


def close_names(name: str) -> list[str]:
    """Shipped names (and :data:`DEFAULT_ALIAS`) close to ``name``, closest first: the "did you mean" of a typo."""
    known = [*sorted(_REGISTRY), DEFAULT_ALIAS]
    by_lower = {k.lower(): k for k in known}
    if name.lower() in by_lower:  # a different case only
        return [by_lower[name.lower()]]
    return difflib.get_close_matches(name, known, n=3, cutoff=0.8)


def get_weights(name: str) -> WeightsEntry:
    """The registry entry called ``name`` (:data:`DEFAULT_ALIAS`: the default's); raises KeyError saying what
    is known, with the closest names."""
    if name == DEFAULT_ALIAS and default_weights() is not None:
        name = default_weights()  # type: ignore[assignment]
    try:
        return _REGISTRY[name]
    except KeyError:
        close = close_names(name)
        hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
        raise KeyError(
            f"no weights named {name!r}{hint} (known: {', '.join(sorted(_REGISTRY)) or 'none yet'})"
        ) from None


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
