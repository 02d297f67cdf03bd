"""The object photographs of the ImageNet object tier: the Qt resource reader, the split per source image, the
composited stream, the fixed test crops, consensus labels, the gate's natural negatives, resumable triplet caching."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from recondefense.data import (
    Consensus,
    ObjectCrops,
    label_by_consensus,
    object_test_crops,
    source_split,
)
from recondefense.data.gcompris_sources import GCOMPRIS_PAINTINGS, GCOMPRIS_PHOTOS, GCOMPRIS_RCC_DIR
from recondefense.data.objects import TEST_COMPOSITES_PER_STAMP, TEST_CROPS_PER_PHOTO, ObjectSources
from recondefense.data.qt_resources import QtResource, QtResourceError, read_qt_resource
from recondefense.data.stamp_sources import TUXPAINT_STAMPS
from recondefense.train.config import TrainConfig
from recondefense.train.negatives import NATURAL_VARIANTS, lookalike_kinds, natural_variants

# -- Qt resource files ------------------------------------------------------------------------------------------


def _rcc(files: dict[str, tuple[bytes, bool]], version: int = 3) -> bytes:
    """A Qt binary resource holding ``files`` (``"dir/name" -> (bytes, zlib-compressed?)``), as rcc writes it:
    breadth-first nodes, each directory's children contiguous and sorted."""
    tree: dict = {}
    for path, payload in files.items():
        node = tree
        *folders, leaf = path.split("/")
        for folder in folders:
            node = node.setdefault(folder, {})
        node[leaf] = payload
    names, data = bytearray(), bytearray()
    name_offsets: dict[str, int] = {}

    def name_offset(name: str) -> int:
        if name not in name_offsets:
            name_offsets[name] = len(names)
            encoded = name.encode("utf-16-be")
            names.extend(struct.pack(">HI", len(name), 0) + encoded)
        return name_offsets[name]

    nodes: list[bytes] = []
    queue = [("", tree)]
    next_index = 1
    size = 14 if version == 1 else 22
    while queue:
        name, node = queue.pop(0)
        offset = name_offset(name) if name else 0
        if isinstance(node, dict):
            children = sorted(node.items())
            record = struct.pack(">IHII", offset, 2, len(children), next_index)
            next_index += len(children)
            queue.extend(children)
        else:
            payload, compressed = node
            stored = struct.pack(">I", len(payload)) + zlib.compress(payload) if compressed else payload
            record = struct.pack(">IHHHI", offset, 1 if compressed else 0, 0, 1, len(data))
            data.extend(struct.pack(">I", len(stored)) + stored)
        nodes.append(record + b"\0" * (size - 14))
    header_size = 20 if version < 3 else 24
    data_offset = header_size
    names_offset = data_offset + len(data)
    tree_offset = names_offset + len(names)
    header = b"qres" + struct.pack(">IIII", version, tree_offset, data_offset, names_offset)
    header += struct.pack(">I", 1) if version >= 3 else b""
    return header + bytes(data) + bytes(names) + b"".join(nodes)


@pytest.mark.parametrize("version", [1, 2, 3])
def test_qt_resource_reads_nested_plain_and_compressed_files(version):
    files = {"a/b/one.webp": (b"first file", False), "a/two.txt": (b"x" * 1000, True), "three": (b"", False)}
    resource = QtResource(_rcc(files, version))
    assert resource.paths() == ["/a/b/one.webp", "/a/two.txt", "/three"]
    assert resource.read("/a/b/one.webp") == b"first file"
    assert resource.read("/a/two.txt") == b"x" * 1000
    assert resource.read("/three") == b""
    with pytest.raises(KeyError):
        resource.read("/missing")


@pytest.mark.parametrize(
    "blob, message",
    [
        (b"not a resource at all", "no 'qres' magic"),
        (b"qres" + struct.pack(">IIII", 9, 20, 20, 20), "unsupported Qt resource version 9"),
        (b"qres" + struct.pack(">IIII", 3, 10**6, 20, 20) + b"\0" * 8, "past the end"),
    ],
)
def test_qt_resource_refuses_what_is_not_one(blob, message):
    with pytest.raises(QtResourceError, match=message):
        QtResource(blob)


def test_qt_resource_reads_the_installed_gcompris_files():
    rcc = Path(GCOMPRIS_RCC_DIR) / "details.rcc"
    if not rcc.is_file():
        pytest.skip("gcompris-qt-data not installed (apt-get install gcompris-qt-data; `make data` does it)")
    resource = read_qt_resource(rcc)
    listed = [e.partition(":")[2] for e in GCOMPRIS_PHOTOS + GCOMPRIS_PAINTINGS if e.startswith("details.rcc:")]
    assert set(listed) <= set(resource.paths())
    assert resource.read(listed[0])[:4] == b"RIFF"  # WebP


# -- sources and splits -----------------------------------------------------------------------------------------


def test_every_source_has_one_fixed_split_and_the_shares_are_near_70_10_20():
    names = list(TUXPAINT_STAMPS) + list(GCOMPRIS_PHOTOS)
    assert len(names) == len(set(names)) >= 500
    splits = [source_split(n) for n in names]
    assert splits == [source_split(n) for n in names]  # a pure function of the name
    shares = {s: splits.count(s) / len(splits) for s in ("train", "val", "test")}
    assert abs(shares["train"] - 0.7) < 0.06 and abs(shares["val"] - 0.1) < 0.04 and abs(shares["test"] - 0.2) < 0.05
    assert not any(p in GCOMPRIS_PHOTOS for p in GCOMPRIS_PAINTINGS)
    assert all(not e.startswith("lang.rcc:") for e in GCOMPRIS_PHOTOS)  # lang holds drawings only


def _tiny_sources() -> ObjectSources:
    gen = torch.Generator().manual_seed(0)
    stamp = torch.zeros(4, 40, 30, dtype=torch.uint8)
    stamp[:3] = 200
    stamp[3, 5:35, 5:25] = 255  # an opaque rectangle on a transparent border
    return ObjectSources(
        "test",
        stamps={"animals/a.png": stamp, "food/b.png": stamp.flip(-1)},
        photos={"x.rcc:/p.webp": torch.randint(0, 256, (3, 60, 80), dtype=torch.uint8, generator=gen)},
        backgrounds={"bg.jpg": torch.randint(0, 60, (3, 90, 120), dtype=torch.uint8, generator=gen)},
    )


def test_object_crops_are_a_pure_function_of_seed_and_index():
    sources = _tiny_sources()
    images = ObjectCrops(length=20, size=32, seed=3, sources=sources)
    again = ObjectCrops(length=20, size=32, seed=3, sources=sources)
    other = ObjectCrops(length=20, size=32, seed=4, sources=sources)
    state = torch.random.get_rng_state()
    first = torch.stack([images[i][0] for i in range(20)])
    assert torch.equal(torch.random.get_rng_state(), state)  # the caller's RNG is untouched
    assert first.shape == (20, 3, 32, 32) and 0 <= first.min() and first.max() <= 1
    assert torch.equal(first, torch.stack([again[i][0] for i in range(20)]))
    assert torch.equal(images[-1][0], first[-1])
    assert not torch.equal(first, torch.stack([other[i][0] for i in range(20)]))
    # composites hold the stamp's colour (200/255) where it was pasted over the dark background
    assert (first > 0.7).any()
    with pytest.raises(IndexError):
        images[20]


def test_object_crops_refuse_bad_arguments():
    with pytest.raises(ValueError, match="photo_share"):
        ObjectCrops(length=1, photo_share=1.5, sources=_tiny_sources())
    with pytest.raises(ValueError, match="non-negative"):
        ObjectCrops(length=-1, sources=_tiny_sources())


def test_object_test_crops_are_fixed_and_count_per_source():
    sources = _tiny_sources()
    crops = object_test_crops(size=32, sources=sources)
    assert len(crops) == TEST_CROPS_PER_PHOTO * len(sources.photos) + TEST_COMPOSITES_PER_STAMP * len(sources.stamps)
    again = object_test_crops(size=32, sources=sources)
    assert all(torch.equal(crops[i][0], again[i][0]) for i in range(len(crops)))
    assert crops[0][0].shape == (3, 32, 32)


# -- consensus labels ---------------------------------------------------------------------------------------------


class _Fixed(nn.Module):
    """Predicts the class stored per image in channel 0's first pixel (x 10)."""

    def __init__(self, flip_index: int | None = None) -> None:
        super().__init__()
        self.flip_index = flip_index
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        classes = (x[:, 0, 0, 0] * 10).round().long()
        if self.flip_index is not None:
            classes = torch.where(classes == self.flip_index, classes + 1, classes)
        return nn.functional.one_hot(classes, 12).float() + self.weight


def test_label_by_consensus_keeps_agreed_images_and_counts_the_rest():
    images = torch.zeros(6, 3, 4, 4)
    images[:, 0, 0, 0] = torch.tensor([0.1, 0.2, 0.3, 0.2, 0.5, 0.6])
    dataset = torch.utils.data.TensorDataset(images, torch.full((6,), -1))
    consensus = label_by_consensus(dataset, [_Fixed(), _Fixed(), _Fixed(flip_index=2)], batch_size=4)
    assert isinstance(consensus, Consensus)
    assert consensus.kept.tolist() == [0, 2, 4, 5] and consensus.dropped == 2 and consensus.total == 6
    assert [consensus[i][1] for i in range(len(consensus))] == [1, 3, 5, 6]
    with pytest.raises(ValueError, match="at least one classifier"):
        label_by_consensus(dataset, [])


# -- the gate's natural negatives ---------------------------------------------------------------------------------


def test_natural_variants_stay_images_and_change_the_fine_scale():
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(12, 3, 32, 32, generator=gen) * 0.5 + 0.25
    out = natural_variants(x, torch.Generator().manual_seed(1))
    assert out.shape == x.shape and 0 <= out.min() and out.max() <= 1
    changed = (out - x).abs().flatten(1).mean(1)
    assert (changed > 1e-4).all()  # every image got a variant
    again = natural_variants(x, torch.Generator().manual_seed(1))
    assert torch.equal(out, again)


def test_the_brightness_lookalike_raises_the_value_as_imagenet_c_and_unknown_kinds_are_refused():
    from recondefense.corruptions import corrupt
    from recondefense.corruptions.weather import brighten
    from recondefense.train.config import validate_config
    from recondefense.train.negatives import LOOKALIKES

    x = torch.rand(6, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 0.6
    out = natural_variants(x, torch.Generator().manual_seed(1), kinds=("brightness",))
    value_gain = out.amax(1) - x.amax(1)  # the HSV value rises by 0.1-0.5 (nothing reaches 1 from 0.6 + 0.4)
    assert (value_gain > 0.1 - 1e-5).all() and (value_gain < 0.5 + 1e-5).all()
    assert torch.equal(brighten(x, 0.3), corrupt(x, "brightness", 3))  # severity 3's shift, 0.3
    with pytest.raises(ValueError, match="look-alike kinds"):
        natural_variants(x, kinds=("fog",))
    with pytest.raises(ValueError, match="gate-negative-kinds"):
        validate_config(TrainConfig(gate_negative_kinds="jpeg,fog"))
    with pytest.raises(ValueError, match="each once"):
        validate_config(TrainConfig(gate_negative_kinds="jpeg,jpeg"))
    assert lookalike_kinds("jpeg,brightness") == ("jpeg", "brightness")
    with pytest.raises(ValueError, match="look-alike kinds"):
        natural_variants(x, kinds=())
    assert LOOKALIKES[: len(NATURAL_VARIANTS)] == NATURAL_VARIANTS  # the default draws are the earlier ones


# -- resumable triplet caching ------------------------------------------------------------------------------------


def test_triplet_caching_resumes_after_a_kill_and_gives_the_same_cache(tmp_path, monkeypatch):
    from test_train import _config, _write_images

    from recondefense.train import train, triplets

    data = _write_images(tmp_path / "data")
    whole = tmp_path / "whole"
    train(_config(data, whole, triplets="cached", epochs=1, warmup_epochs=1, stop_after_steps=1))

    calls = {"n": 0}
    attack = triplets.attack_groups

    def killed_after_two(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 2:
            raise KeyboardInterrupt
        return attack(*args, **kwargs)

    monkeypatch.setattr(triplets, "attack_groups", killed_after_two)
    part = tmp_path / "part"
    with pytest.raises(KeyboardInterrupt):
        train(_config(data, part, triplets="cached", epochs=1, warmup_epochs=1, stop_after_steps=1))
    assert len(list((part / triplets.CACHED_PARTS).glob("*.npz"))) == 2
    calls["n"] = -(10**6)  # no more kills; count the batches attacked again
    # started again (no checkpoint yet, so without --resume): only the missing batches are attacked
    train(_config(data, part, triplets="cached", epochs=1, warmup_epochs=1, stop_after_steps=1))
    assert calls["n"] == -(10**6) + 2  # 4 batches in all, 2 of them cached before the kill
    assert not (part / triplets.CACHED_PARTS).exists()
    for name in ("triplets_x_adv.npy", "triplets_x.npy", "triplets_y.npy"):
        assert np.array_equal(np.load(whole / name), np.load(part / name))


def test_a_run_with_a_complete_cache_reads_it_instead_of_labelling_the_data_again(tmp_path, monkeypatch):
    from test_train import _config, _write_images

    from recondefense.train import setup, train

    data = _write_images(tmp_path / "data")
    out = tmp_path / "run"
    train(_config(data, out, triplets="cached", epochs=2, warmup_epochs=1, stop_after_steps=1))
    loaded = []
    load = setup.load_dataset
    monkeypatch.setattr(
        setup, "load_dataset", lambda spec, split, **kw: loaded.append(split) or load(spec, split, **kw)
    )
    final = train(_config(data, out, triplets="cached", epochs=2, warmup_epochs=1, resume=True))
    assert loaded == ["val"] and (final / "model.safetensors").is_file()


def test_a_cached_run_of_classifier_labelled_images_skips_the_class_count_check(tmp_path):
    from recondefense.train.network import _num_classes
    from recondefense.train.triplets import CACHED_CLEAN, CACHED_LABELS, CACHED_TRIPLETS, CachedTrainingSet

    np.save(tmp_path / CACHED_CLEAN, np.zeros((3, 3, 4, 4), dtype=np.uint8))
    np.save(tmp_path / CACHED_TRIPLETS, np.zeros((3, 3, 4, 4), dtype=np.uint8))
    np.save(tmp_path / CACHED_LABELS, np.array([5, -1, 980]))
    cached = CachedTrainingSet.from_folder(tmp_path, labelled_by_classifier=True)
    assert CachedTrainingSet.complete(tmp_path) and len(cached) == 3 and cached[1] is None
    assert cached[2][1] == 980 and cached[0][0].shape == (3, 4, 4)
    assert _num_classes(cached) is None  # predicted labels: 981 is not the classifier's class count


def test_the_installed_object_sources_give_the_tier_enough_test_crops():
    from recondefense.data import object_sources

    try:
        sources = object_sources("test")
    except FileNotFoundError as err:
        pytest.skip(str(err))
    if len(sources.stamps) < 40 or len(sources.photos) < 30:
        pytest.skip("tuxpaint-stamps-default or gcompris-qt-data not fully installed (`make data` installs them)")
    crops = object_test_crops(sources=sources)
    assert len(crops) >= 600  # before the consensus drops the crops the three classifiers disagree on (about half)
    train = object_sources("train")
    assert not set(train.stamps) & set(sources.stamps) and not set(train.photos) & set(sources.photos)
    assert not set(train.backgrounds) & set(sources.backgrounds)


def test_the_object_tier_labels_once_and_reads_them_back_from_the_cache(tmp_path, monkeypatch):
    from recondefense import classifiers, data
    from recondefense.evaluate import tiers

    images = torch.zeros(4, 3, 4, 4)
    images[:, 0, 0, 0] = torch.tensor([0.1, 0.2, 0.3, 0.4])
    crops = data._tensors.TensorImages((images * 255).round().to(torch.uint8), torch.full((4,), -1))
    made, splits = [], []
    monkeypatch.setenv("RECONDEFENSE_CACHE", str(tmp_path))
    monkeypatch.setattr(data, "object_sources", lambda split: splits.append(split) or split)
    monkeypatch.setattr(data, "object_test_crops", lambda sources: crops)
    monkeypatch.setattr(classifiers, "load_classifier", lambda name: made.append(name) or _Fixed(flip_index=3))
    tiers.object_test_set.cache_clear()
    try:
        first = tiers.object_test_set()
        tiers.object_test_set.cache_clear()
        second = tiers.object_test_set()
        val = tiers.object_test_set("val")
        assert tiers.TIERS["imagenet-objects-val"].test_set() is val
        assert tiers.TIERS["imagenet-objects"].test_set() is second
        with pytest.raises(ValueError, match="train split is trained on"):
            tiers.object_test_set("train")
    finally:
        tiers.object_test_set.cache_clear()
    # the classifiers ran once per split; the second call read the labels back
    assert made == [*tiers.CONSENSUS_CLASSIFIERS, *tiers.VALIDATION_CONSENSUS_CLASSIFIERS]
    assert "imagenet-efficientnet_lite1" not in tiers.VALIDATION_CONSENSUS_CLASSIFIERS
    assert splits == ["test", "test", "val"]
    assert first.kept.tolist() == second.kept.tolist() and first.labels.tolist() == second.labels.tolist()
    assert val.labels.tolist() == first.labels.tolist()  # (the same fake crops and classifiers)
    assert len(list((tmp_path / "consensus").glob("*.pt"))) == 2
