"""The training triplets ``(x, x~, y)``: x~ made online per batch (FGSM/PGD/mix, adaptive, noise or
corruptions against classifier ``k``) or once for the whole training set (``--triplets cached``)."""

from __future__ import annotations

import dataclasses
import shutil
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from ..attacks import FGSM, PGD
from ..corruptions import corrupt
from ..data import collate_skipping
from ..files import write_atomic
from ..routing import ROUTES
from .attack_specs import attack_parts, corruption_spec, gaussian_sigma
from .config import TrainConfig

CACHED_TRIPLETS = "triplets_x_adv.npy"
#: The route of each cached x~ (:func:`source_route`: 1 attacked, 2 corrupted), for a routed gate's loss.
CACHED_ROUTES = "triplets_route.npy"
#: The route of an x~ whose source is not known (a cache written before :data:`CACHED_ROUTES`, of several sources).
UNKNOWN_ROUTE = -1
#: The clean images and labels cached with x~, so epochs read arrays instead of decoding or cropping again.
CACHED_CLEAN = "triplets_x.npy"
CACHED_LABELS = "triplets_y.npy"
#: Folder of the batches cached so far (one ``.npz`` per batch): a killed run resumes from them.
CACHED_PARTS = "triplets_parts"


def step_seed(seed: int, epoch: int, step: int) -> int:
    """The seed of one step (triplet caching uses epoch -1, validation attacks epoch -2)."""
    return (seed * 1_000_003 + epoch * 100_003 + step) % (2**63)


class TripletMaker:
    """Makes x~ for a batch: FGSM/PGD/mix against classifier ``k`` (or AE + classifier when adaptive)."""

    def __init__(self, config: TrainConfig, classifiers: list[nn.Module]) -> None:
        self.config = config
        self.classifiers = classifiers
        self.fgsm = [FGSM(c, eps=config.eps) for c in classifiers]
        self.pgd = [
            PGD(c, eps=config.eps, alpha=config.step_size, steps=config.steps, random_start=config.random_start)
            for c in classifiers
        ]
        #: validation batch index -> (attacked batch against the first classifier alone, undefended clean and
        #: attacked correct counts), filled once by :func:`~recondefense.train.validation.validate`
        self.validation_attacks: dict[int, tuple[torch.Tensor, int, int]] = {}

    def kind(self) -> str:
        """One triplet source of ``--attack``, drawn from the seeded global generator (``mix``: FGSM or PGD)."""
        parts = attack_parts(self.config.attack)
        part = parts[int(torch.randint(len(parts), ()))] if len(parts) > 1 else parts[0]
        if part == "mix":
            return "fgsm" if torch.rand(()) < 0.5 else "pgd"
        return part

    def __call__(self, x: torch.Tensor, y: torch.Tensor, ae: nn.Module | None = None, k: int = 0) -> torch.Tensor:
        """x~ of the batch ``(x, y)`` from one source drawn by :meth:`kind` (see :meth:`make`)."""
        return self.make(x, y, ae, k)[0]

    def make(
        self, x: torch.Tensor, y: torch.Tensor, ae: nn.Module | None = None, k: int = 0
    ) -> tuple[torch.Tensor, str]:
        """x~ of the batch ``(x, y)`` against classifier ``k`` (through ``ae`` when adaptive), and its source."""
        kind = self.kind()
        return self._make(kind, x, y, ae, k), kind

    def _make(self, kind: str, x: torch.Tensor, y: torch.Tensor, ae: nn.Module | None, k: int) -> torch.Tensor:
        sigma = gaussian_sigma(kind)
        if sigma is not None:  # noise triplets (denoised smoothing): clamp(x + N(0, sigma^2)), no classifier needed
            return (x + sigma * torch.randn_like(x)).clamp(0, 1)
        corruption = corruption_spec(kind)
        if corruption is not None:  # one corruption and severity per image, from the seeded global generator
            names, severities = corruption
            out = torch.empty_like(x)
            for i in range(len(x)):
                name = names[int(torch.randint(len(names), ()))]
                severity = severities[int(torch.randint(len(severities), ()))]
                out[i] = corrupt(x[i], name, severity)
            return out
        if self.config.adaptive and ae is not None:
            target = nn.Sequential(ae, self.classifiers[k])
            attack = (
                FGSM(target, eps=self.config.eps)
                if kind == "fgsm"
                else PGD(
                    target,
                    eps=self.config.eps,
                    alpha=self.config.step_size,
                    steps=self.config.steps,
                    random_start=self.config.random_start,
                )
            )
        else:
            attack = self.fgsm[k] if kind == "fgsm" else self.pgd[k]
        return attack(x, y).detach()


def source_route(kind: str) -> int:
    """The route of a routed purifier (:data:`~recondefense.routing.ROUTES`) that triplets of source ``kind`` teach
    its gate: ``"adversarial"`` (1) for an attack (``pgd``, ``fgsm``, ``mix``), ``"corruption"`` (2) for corruptions
    and Gaussian noise."""
    attack = kind in ("pgd", "fgsm", "mix")
    return ROUTES.index("adversarial" if attack else "corruption")


def single_source(maker: TripletMaker, part: str) -> TripletMaker:
    """A triplet maker for one ``+``-part of ``maker``'s attack (validation measures the first part alone)."""
    return TripletMaker(dataclasses.replace(maker.config, attack=part), maker.classifiers)


def classifier_groups(index: torch.Tensor, count: int) -> list[tuple[int, torch.Tensor]]:
    """``(k, positions in the batch)`` of the training images judged by classifier ``k`` (image index mod count)."""
    if count == 1:
        return [(0, torch.arange(len(index)))]
    owner = index % count
    return [(k, (owner == k).nonzero().flatten()) for k in range(count) if (owner == k).any()]


def check_labels(y: torch.Tensor, classes: int) -> None:
    """Refuse labels outside the classifier's ``classes`` (a batch's ``y``, read on the host before it moves)."""
    if len(y) and (int(y.min()) < 0 or int(y.max()) >= classes):
        bad = int(y.min()) if int(y.min()) < 0 else int(y.max())
        raise ValueError(
            f"label {bad} is outside the classifier's {classes} classes (0 to {classes - 1}): pass labels of the "
            "classes the classifier was trained on, or no labels (its clean predictions are used)"
        )


def labels_for(
    classifier: nn.Module, x: torch.Tensor, y: torch.Tensor, relabel: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """The classifier's clean logits on ``x`` and the labels to attack and guide with: ``y``, or its own
    predictions when the data was labelled by another classifier (``relabel``)."""
    with torch.no_grad():
        logits = classifier(x)
    return logits, (logits.argmax(1) if relabel else y)


def attack_groups(
    maker: TripletMaker,
    x: torch.Tensor,
    y: torch.Tensor,
    groups: list[tuple[int, torch.Tensor]],
    relabel: bool,
    ae: nn.Module | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """x~ for a batch, each group of rows made against its classifier ``k`` (with its own label when ``relabel``)
    from a source it draws, and the route of each row's source (:func:`source_route`), ``(N,)`` int64."""
    x_adv = torch.empty_like(x)
    routes = torch.empty(len(x), dtype=torch.long, device=x.device)
    for k, rows in groups:
        _, labels = labels_for(maker.classifiers[k], x[rows], y[rows], relabel)
        x_adv[rows], kind = maker.make(x[rows], labels, ae, k=k)
        routes[rows] = source_route(kind)
    return x_adv, routes


def cached_batch(
    cached: np.ndarray, index: torch.Tensor, x: torch.Tensor, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """The cached x~ of a batch and ``x`` rounded to 8 bits like it, so 8-bit rounding tells nothing apart."""
    x_adv = torch.from_numpy(np.asarray(cached[index.numpy()])).to(device).float().div(255)
    return (x * 255).round() / 255, x_adv


@dataclasses.dataclass
class _TripletCache:
    """``--triplets cached``: x~ of every training image as uint8 rows, and the clean images (uint8) and labels
    (int64, -1 where the image could not be decoded) beside them; ``clean`` is None for a cache written before
    they were stored (its epochs read the dataset, as then)."""

    x_adv: np.ndarray
    clean: np.ndarray | None = None
    labels: np.ndarray | None = None
    routes: np.ndarray | None = None
    #: the route of every row of a cache without ``routes`` (written before them) whose ``--attack`` has one source
    route: int | None = None

    def batch(
        self, index: torch.Tensor, x: torch.Tensor, device: torch.device
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """:func:`cached_batch`, and the route of each row (:func:`source_route`), ``(N,)`` int64 on ``device``:
        :data:`UNKNOWN_ROUTE` for a cache written without routes whose ``--attack`` draws several sources."""
        x, x_adv = cached_batch(self.x_adv, index, x, device)
        if self.routes is not None:
            routes = torch.from_numpy(np.asarray(self.routes[index.numpy()])).long()
        else:
            routes = torch.full((len(index),), UNKNOWN_ROUTE if self.route is None else self.route, dtype=torch.long)
        return x, x_adv, routes.to(device)

    def items(self, dataset: Dataset) -> Dataset:
        """What the epochs iterate, ``(image, label, index)`` items: the cached arrays when they hold the clean
        images (the same 8-bit values the steps use, without decoding or cropping again), else ``dataset``."""
        if self.clean is None or self.labels is None:
            return WithIndex(dataset)
        return WithIndex(CachedTrainingSet(self.clean, self.labels))


class CachedTrainingSet(Dataset):
    """The training set held by a ``--triplets cached`` cache: ``(image (C, H, W) float in [0, 1], label)`` from its
    uint8 clean images and labels (memory-mapped by :meth:`from_folder`); None for images that did not decode
    (label -1). Read back by a resumed or restarted run, it neither decodes nor labels the data again.
    ``labelled_by_classifier``: the labels are the first classifier's predictions."""

    def __init__(self, clean: np.ndarray, labels: np.ndarray, labelled_by_classifier: bool = False) -> None:
        self.clean = clean
        self.stored_labels = labels  # (not ``labels``: the class count was checked when the cache was made)
        self.labelled_by_classifier = labelled_by_classifier

    @classmethod
    def from_folder(cls, out: Path, labelled_by_classifier: bool) -> CachedTrainingSet:
        """The clean images and labels of the complete cache in ``out`` (see :meth:`complete`)."""
        return cls(np.load(out / CACHED_CLEAN, mmap_mode="r"), np.load(out / CACHED_LABELS), labelled_by_classifier)

    @staticmethod
    def complete(out: Path) -> bool:
        """Whether ``out`` holds a complete cache with its clean images and labels."""
        return all((out / name).is_file() for name in (CACHED_TRIPLETS, CACHED_CLEAN, CACHED_LABELS))

    def __len__(self) -> int:
        return len(self.stored_labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int] | None:
        label = int(self.stored_labels[index])
        if label < 0:
            return None
        return torch.from_numpy(np.array(self.clean[index])).float().div(255), label


def triplet_cache(
    dataset: Dataset,
    maker: TripletMaker,
    config: TrainConfig,
    out: Path,
    device: torch.device,
    relabel: bool,
    rank: int,
    world: int,
) -> _TripletCache | None:
    """``--triplets cached``: every rank's view of the cache rank 0 makes (or finds); None for ``online``."""
    if config.triplets == "online":
        return None
    if config.triplets != "cached":
        raise ValueError(f"unknown triplets mode {config.triplets!r}: expected online or cached")
    if config.adaptive:
        raise ValueError("adaptive triplets depend on the current AE and cannot be cached; use triplets='online'")
    if rank == 0 and not (out / CACHED_TRIPLETS).is_file():
        _cache_triplets(dataset, maker, config, out, device, relabel)
    if world > 1:
        dist.barrier()
    cache = _load_cache(out)
    parts = attack_parts(config.attack)
    cache.route = source_route(parts[0]) if len(parts) == 1 else None
    return cache


def _load_cache(out: Path) -> _TripletCache:
    """The cache in ``out``, memory-mapped (the clean images and labels, and the routes, when it holds them)."""
    cache = _TripletCache(np.load(out / CACHED_TRIPLETS, mmap_mode="r"))
    if (out / CACHED_CLEAN).is_file() and (out / CACHED_LABELS).is_file():
        cache.clean = np.load(out / CACHED_CLEAN, mmap_mode="r")
        cache.labels = np.load(out / CACHED_LABELS)
    if (out / CACHED_ROUTES).is_file():
        cache.routes = np.load(out / CACHED_ROUTES)
    return cache


def _cache_triplets(
    dataset: Dataset, maker: TripletMaker, config: TrainConfig, out: Path, device: torch.device, relabel: bool
) -> None:
    """Attack the whole training set once (8-bit, as the official code stored them); reused every epoch.

    Image ``i`` is attacked against classifier ``i mod K`` (with its own label when ``relabel``). Each batch is
    written to ``<out>/triplets_parts/`` as it is done (batch ``i`` seeded by ``i`` alone), so a killed run that is
    started again attacks only the batches it lacks and gets the same cache. At the end the clean images and labels
    are stored first and x~ last, so a cache with x~ is complete; the parts are then removed."""
    parts = out / CACHED_PARTS
    parts.mkdir(parents=True, exist_ok=True)
    batches = -(-len(dataset) // config.batch_size)
    done = {i for i in range(batches) if (parts / f"{i:06d}.npz").is_file()}
    todo = [i for i in range(batches) if i not in done]
    loader = DataLoader(
        WithIndex(dataset),
        batch_sampler=[
            list(range(i * config.batch_size, min(len(dataset), (i + 1) * config.batch_size))) for i in todo
        ],
        collate_fn=collate_indexed,
        num_workers=config.num_workers,
    )
    bar = tqdm(total=batches, initial=len(done), desc="caching triplets", disable=not config.progress)
    for i, (x, y, index, _) in zip(todo, loader):
        if len(y):
            torch.manual_seed(step_seed(config.seed, -1, i))
            x, y = x.to(device), y.to(device)
            x_adv, routes = attack_groups(maker, x, y, classifier_groups(index, len(maker.classifiers)), relabel)
            rows = {
                "index": index.numpy(),
                "x_adv": (x_adv * 255).round().to(torch.uint8).cpu().numpy(),
                "routes": routes.to(torch.uint8).cpu().numpy(),
                "clean": (x * 255).round().to(torch.uint8).cpu().numpy(),
                "labels": y.cpu().numpy(),
            }
        else:
            rows = {"index": np.zeros(0, dtype=np.int64)}
        write_atomic(parts / f"{i:06d}.npz", partial(np.savez, **rows))
        bar.update()
    bar.close()
    arrays: dict[str, np.ndarray] = {}  # row i = training image i (undecodable images: zeros and label -1)
    routed = True
    for i in range(batches):
        with np.load(parts / f"{i:06d}.npz") as rows:
            if not len(rows["index"]):
                continue
            if not arrays:
                shape = rows["clean"].shape[1:]
                arrays = {
                    "x_adv": np.zeros((len(dataset), *shape), dtype=np.uint8),
                    "clean": np.zeros((len(dataset), *shape), dtype=np.uint8),
                    "labels": np.full(len(dataset), -1, dtype=np.int64),
                    "routes": np.zeros(len(dataset), dtype=np.uint8),
                }
            routed = routed and "routes" in rows  # (parts written before routes: a cache without them)
            for name in ("x_adv", "clean", "labels", "routes")[: 4 if routed else 3]:
                arrays[name][rows["index"]] = rows[name]
    if not arrays:
        raise ValueError("no decodable training image to attack")
    write_atomic(out / CACHED_CLEAN, partial(np.save, arr=arrays["clean"]))
    write_atomic(out / CACHED_LABELS, partial(np.save, arr=arrays["labels"]))
    if routed:
        write_atomic(out / CACHED_ROUTES, partial(np.save, arr=arrays["routes"]))
    write_atomic(out / CACHED_TRIPLETS, partial(np.save, arr=arrays["x_adv"]))
    shutil.rmtree(parts, ignore_errors=True)


class WithIndex(Dataset):
    """``(image, label, index)`` items of a dataset of ``(image, label)`` items (None stays None)."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, int] | None:
        item = self.dataset[index]
        return None if item is None else (item[0], item[1], index)


def collate_indexed(batch: list) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """Collate ``(image, label, index)`` items, skipping ``None`` (unreadable) ones.

    Returns: images, labels, indices, and the count of items skipped."""
    kept = [b for b in batch if b is not None]
    images, labels, skipped = collate_skipping([(b[0], b[1]) for b in kept] + [None] * (len(batch) - len(kept)))
    return images, labels, torch.as_tensor([b[2] for b in kept], dtype=torch.long), skipped
