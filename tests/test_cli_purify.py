"""``recondefense purify`` never loses an image: every input is checked before anything is written, each PNG
is written whole or not at all, a failure on one image is reported (``error:``) without losing the others,
existing outputs are kept unless ``--overwrite``, symlinks are never written through, EXIF orientation is kept."""

from __future__ import annotations

import errno
import io
import os
import re
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.io
from PIL import Image, ImageOps

from recondefense import cli as cli_module
from recondefense.cli import main as cli
from recondefense.defense import ReconstructiveDefense

WEIGHTS = "fashionmnist-smallcnn-pgd"  # 1 channel
NAMES = [f"n{i}" for i in range(4)]


pytestmark = pytest.mark.usefixtures("one_thread")


def _png(path: Path, seed: int, size: tuple[int, int] = (16, 16), fmt: str = "PNG") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8)
    Image.fromarray(pixels).save(path, format=fmt)


def _png16(pixels: np.ndarray) -> bytes:
    """A 16-bit grayscale PNG of ``(H, W)`` uint16 ``pixels`` (PIL cannot write 16-bit RGB, numpy can)."""
    height, width = pixels.shape
    raw = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in pixels)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 16, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def _snapshot(root: Path) -> dict[str, bytes | None]:
    """Every path under ``root`` (folders as None, files and symlinks by content)."""
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None) for p in sorted(root.rglob("*"))}


def _run(argv: list[str], capsys) -> tuple[int, str, str]:
    try:
        code = cli(argv)
    except SystemExit as exit_:
        code = exit_.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def four(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """In the working folder: in/n0.png ... in/n3.png, 16 x 16 grayscale."""
    monkeypatch.chdir(tmp_path)
    for i, name in enumerate(NAMES):
        _png(tmp_path / "in" / f"{name}.png", i)
    return tmp_path


@pytest.fixture
def reference(four: Path, capsys) -> dict[str, bytes]:
    """What a clean run writes for the four inputs (then removed)."""
    assert _run(["purify", *(f"in/{n}.png" for n in NAMES), "--weights", WEIGHTS, "--out", "ref"], capsys)[0] == 0
    outputs = {n: (four / "ref" / f"{n}.png").read_bytes() for n in NAMES}
    for n in NAMES:
        (four / "ref" / f"{n}.png").unlink()
    (four / "ref").rmdir()
    return outputs


def _written(out: str) -> list[str]:
    """The ``input -> output`` of each written image's line (without its PSNR and gate details)."""
    return [line.split(" (", 1)[0] for line in out.splitlines() if " -> " in line]


def _purify_four(capsys, *extra: str) -> tuple[int, str, str]:
    return _run(["purify", *(f"in/{n}.png" for n in NAMES), "--weights", WEIGHTS, "--out", "small", *extra], capsys)


# ------------------------------------------------------------------ 1. write errors are never silent
def test_disk_full_reports_every_lost_image_and_leaves_no_partial_file(four, reference, monkeypatch, capsys) -> None:
    """A fake disk with room for one and a half PNGs: the first is written, the rest reported, none truncated."""
    real_write = os.write
    room = [len(reference["n0"]) + len(reference["n1"]) // 2]

    def full_disk(fd: int, data) -> int:
        if fd <= 2:
            return real_write(fd, data)
        if room[0] == 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        written = real_write(fd, bytes(data)[: room[0]])
        room[0] -= written
        return written

    monkeypatch.setattr(os, "write", full_disk)
    code, out, err = _purify_four(capsys)
    monkeypatch.undo()
    assert code == 1
    assert _written(out) == ["in/n0.png -> small/n0.png"]
    lines = err.splitlines()
    assert lines[:3] == [f"error: in/{n}.png -> small/{n}.png not written: No space left on device" for n in NAMES[1:]]
    assert lines[3].startswith("error: 3 of 4 image(s) not written")
    assert _snapshot(four / "small") == {"n0.png": reference["n0"]}  # complete, and no temporary file left


def test_a_write_that_drops_bytes_silently_is_caught(four, monkeypatch, capsys) -> None:
    """What torchvision's write_png did on a full tmpfs: bytes lost, success reported. The size check catches it."""
    real_write = os.write

    def lying_disk(fd: int, data) -> int:
        if fd <= 2:
            return real_write(fd, data)
        real_write(fd, bytes(data)[: len(data) // 2])
        return len(data)

    monkeypatch.setattr(os, "write", lying_disk)
    code, out, err = _purify_four(capsys)
    monkeypatch.undo()
    assert code == 1 and out == ""
    assert err.count("short write") == 4 and "error: in/n2.png -> small/n2.png not written" in err
    assert _snapshot(four / "small") == {}


def test_a_failing_encoder_loses_only_its_image(four, reference, monkeypatch, capsys) -> None:
    real_encode = torchvision.io.encode_png
    calls = []

    def encode_png(image, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("encoder\nexploded")
        return real_encode(image, *args, **kwargs)

    monkeypatch.setattr(torchvision.io, "encode_png", encode_png)
    code, out, err = _purify_four(capsys)
    assert code == 1
    assert _written(out) == [f"in/{n}.png -> small/{n}.png" for n in ("n0", "n2", "n3")]
    assert err.splitlines()[0] == "error: in/n1.png -> small/n1.png not written: encoder exploded"
    assert _snapshot(four / "small") == {n + ".png": reference[n] for n in ("n0", "n2", "n3")}


def test_out_of_memory_on_a_huge_image_loses_only_that_image(four, monkeypatch, capsys) -> None:
    _png(four / "in" / "huge.png", 9, size=(64, 64))
    real_purify = ReconstructiveDefense.purify

    def purify(self, images):
        if images.shape[-1] > 32:
            raise RuntimeError("[enforce fail at alloc_cpu.cpp:121] DefaultCPUAllocator: can't allocate memory")
        return real_purify(self, images)

    monkeypatch.setattr(ReconstructiveDefense, "purify", purify)
    code, out, err = _run(["purify", "in/n0.png", "in/huge.png", "in/n1.png", "--weights", WEIGHTS], capsys)
    assert code == 1
    assert _written(out) == ["in/n0.png -> purified/n0.png", "in/n1.png -> purified/n1.png"]
    assert err.splitlines()[0].startswith("error: in/huge.png -> purified/huge.png not written: [enforce fail")
    assert sorted(os.listdir(four / "purified")) == ["n0.png", "n1.png"]


def test_an_interrupt_while_writing_leaves_no_partial_file(four, monkeypatch, capsys) -> None:
    def interrupted(fd: int) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _purify_four(capsys)
    assert _snapshot(four / "small") == {}


# ------------------------------------------------------------------ 2. every input checked before writing
def test_16_bit_png_is_read_at_full_precision(four, capsys) -> None:
    pixels = np.random.default_rng(5).integers(0, 256, (16, 16), dtype=np.uint16)
    Image.fromarray(pixels.astype(np.uint8)).save(four / "in" / "eight.png")
    (four / "in" / "sixteen.png").write_bytes(_png16(pixels * 257))  # v * 257 / 65535 == v / 255
    code, _, err = _run(["purify", "in/eight.png", "in/sixteen.png", "--weights", WEIGHTS], capsys)
    assert code == 0, err
    assert (four / "purified" / "eight.png").read_bytes() == (four / "purified" / "sixteen.png").read_bytes()


@pytest.mark.parametrize("fmt", ["GIF", "WEBP", "PNG"])
def test_animated_images_are_refused_before_anything_is_written(four, capsys, fmt) -> None:
    frames = [Image.fromarray(np.full((16, 16), 60 * i, np.uint8)) for i in range(3)]
    frames[0].save(four / "in" / "anim.img", format=fmt, save_all=True, append_images=frames[1:])
    before = _snapshot(four)
    code, out, err = _run(["purify", "in/n0.png", "in/anim.img", "--weights", WEIGHTS], capsys)
    assert code == 2 and out == ""
    assert err.startswith("error: 1 of 2 input(s) cannot be read, nothing written: in/anim.img (animated")
    assert ("3 frames" in err) == (fmt != "WEBP") and len(err.splitlines()) == 1
    assert _snapshot(four) == before


def test_a_grayscale_gif_is_purified_in_the_defense_channels(four, capsys) -> None:
    """GIFs decode to RGB whatever the mode asked: a grayscale one goes through one-channel weights (a colour one is
    refused, test_a_colour_photo_is_refused_by_grayscale_weights), not a traceback."""
    gray = np.random.default_rng(6).integers(0, 256, (16, 16), dtype=np.uint8)
    Image.fromarray(np.stack([gray] * 3, axis=-1)).save(four / "in" / "still.gif", format="GIF")
    code, _, err = _run(["purify", "in/still.gif", "in/n0.png", "--weights", WEIGHTS], capsys)
    assert code == 0, err
    with Image.open(four / "purified" / "still.png") as out:
        assert out.mode == "L" and out.size == (16, 16)
    Image.fromarray(np.random.default_rng(6).integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(
        four / "in" / "colour.gif", format="GIF"
    )
    code, _, err = _run(["purify", "in/colour.gif", "--weights", WEIGHTS, "--out", "p"], capsys)
    assert code == 2 and "in/colour.gif (a colour image" in err


def test_an_image_too_large_to_decode_is_refused_up_front(four, monkeypatch, capsys) -> None:
    _png(four / "in" / "huge.png", 9, size=(64, 64))
    huge = len((four / "in" / "huge.png").read_bytes())
    real_decode = torchvision.io.decode_image

    def decode_image(data, *args, **kwargs):
        if len(data) == huge:
            raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 1 TB")
        return real_decode(data, *args, **kwargs)

    monkeypatch.setattr(torchvision.io, "decode_image", decode_image)
    before = _snapshot(four)
    code, out, err = _run(["purify", "in/n0.png", "in/huge.png", "--weights", WEIGHTS], capsys)
    assert code == 2 and out == ""
    assert "in/huge.png (too large to decode: out of memory)" in err and len(err.splitlines()) == 1
    assert _snapshot(four) == before


# ------------------------------------------------------------------ 3. existing files, symlinks, orientation
def test_existing_outputs_are_refused_unless_overwrite(four, reference, capsys) -> None:
    (four / "small").mkdir()
    (four / "small" / "n2.png").write_bytes(b"mine")
    (four / "small" / "n3.png").symlink_to(four / "nowhere.png")  # a dangling link exists too
    before = _snapshot(four)
    code, out, err = _purify_four(capsys)
    assert code == 2 and out == ""
    assert err.strip() == (
        "error: 2 output(s) exist already, nothing written: small/n2.png, small/n3.png: pass --overwrite to "
        "replace them, or pick another --out"
    )
    assert _snapshot(four) == before
    code, _, err = _purify_four(capsys, "--overwrite")
    assert code == 0, err
    assert _snapshot(four / "small") == {n + ".png": reference[n] for n in NAMES}
    assert not (four / "small" / "n3.png").is_symlink() and not (four / "nowhere.png").exists()


def test_read_only_output_is_refused_even_with_overwrite(four, monkeypatch, capsys) -> None:
    (four / "small").mkdir()
    (four / "small" / "n1.png").write_bytes(b"mine")
    real_access = os.access
    # as root every file is writable: pretend this one is read-only where cli checks
    monkeypatch.setattr(
        cli_module.os, "access", lambda path, mode: real_access(path, mode) and Path(path).name != "n1.png"
    )
    before = _snapshot(four)
    code, out, err = _purify_four(capsys, "--overwrite")
    assert code == 2 and out == ""
    assert err.startswith("error: output(s) small/n1.png are read-only, nothing written")
    assert _snapshot(four) == before


def test_a_symlink_in_out_is_replaced_never_written_through(four, capsys) -> None:
    (four / "outside").mkdir()
    (four / "outside" / "precious.png").write_bytes(b"keep")
    (four / "small").mkdir()
    (four / "small" / "n0.png").symlink_to(four / "outside" / "precious.png")
    code, _, err = _purify_four(capsys)
    assert code == 2 and "small/n0.png" in err and "--overwrite" in err
    code, _, err = _purify_four(capsys, "--overwrite")
    assert code == 0, err
    assert (four / "outside" / "precious.png").read_bytes() == b"keep"
    assert not (four / "small" / "n0.png").is_symlink()
    with Image.open(four / "small" / "n0.png") as image:
        assert image.size == (16, 16)


def _oriented(fmt: str, orientation: int) -> bytes:
    """A 10 x 20 (H x W) RGB image carrying EXIF ``orientation``, lossless where the format allows."""
    pixels = np.random.default_rng(orientation).integers(0, 256, (10, 20, 3), dtype=np.uint8)
    image = Image.fromarray(pixels)
    exif = image.getexif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, exif=exif.tobytes(), **({"lossless": True} if fmt == "WEBP" else {}))
    return buffer.getvalue()


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_decode_applies_exif_orientation_like_pillow(fmt: str, orientation: int) -> None:
    data = _oriented(fmt, orientation)
    with Image.open(io.BytesIO(data)) as image:
        upright = np.asarray(ImageOps.exif_transpose(image).convert("RGB"))
    decoded = cli_module._decode(data, 3)
    assert decoded.dtype == torch.float32 and 0 <= decoded.min() and decoded.max() <= 1
    np.testing.assert_array_equal((decoded * 255).round().byte().permute(1, 2, 0).numpy(), upright)


def test_purify_keeps_the_orientation_of_a_rotated_jpeg(four, capsys) -> None:
    (four / "in" / "phone.jpg").write_bytes(_oriented("JPEG", 6))  # stored 20 wide, shown 10 wide
    code, _, err = _run(["purify", "in/phone.jpg"], capsys)  # (a colour photo: the default, colour weights)
    assert code == 0, err
    with Image.open(four / "purified" / "phone.png") as image:
        assert image.size == (10, 20)


def test_purify_help_says_what_a_failure_does(capsys) -> None:
    code, out, _ = _run(["purify", "--help"], capsys)
    text = " ".join(out.split())
    assert code == 0 and "--overwrite" in text
    assert "purify continues with the others, and exits with code 1" in text
    assert "written whole or not at all" in text


# ------------------------------------------------------------------ 4. what a new user runs first (issue 29)
def _rgb(path: Path, seed: int, size: tuple[int, int] = (24, 32)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)).save(path)


def _details(out: str) -> dict[str, str]:
    """``input -> output (details)`` lines as ``{"input -> output": details}``."""
    lines = [line for line in out.splitlines() if " -> " in line]
    return dict(
        (line.split(" (", 1)[0], line.split(" (", 1)[1].rstrip(")")) if " (" in line else (line, "") for line in lines
    )


def test_a_colour_photo_is_refused_by_grayscale_weights(four, capsys) -> None:
    """It was written as a grayscale PNG with grid artifacts, exit 0; the Python API refuses the same mismatch."""
    _rgb(four / "in" / "fruits.png", 1)
    before = _snapshot(four)
    code, out, err = _run(["purify", "in/n0.png", "in/fruits.png", "--weights", WEIGHTS], capsys)
    assert code == 2 and out == ""
    assert len(err.splitlines()) == 1 and err.startswith("error: 1 of 2 input(s) cannot be read, nothing written")
    assert "in/fruits.png (a colour image" in err and "1-channel" in err and "--weights default" in err
    assert _snapshot(four) == before


def test_a_grayscale_input_comes_back_grayscale_and_colour_comes_back_colour(four, capsys) -> None:
    """Through 3-channel weights a grayscale photo was written back as RGB."""
    _rgb(four / "in" / "colour.png", 2)
    code, out, err = _run(["purify", "in/n0.png", "in/colour.png", "--out", "p"], capsys)  # (default weights)
    assert code == 0, err
    with Image.open(four / "p" / "n0.png") as gray, Image.open(four / "p" / "colour.png") as colour:
        assert (gray.mode, gray.size) == ("L", (16, 16)) and (colour.mode, colour.size) == ("RGB", (32, 24))


def test_output_paths_do_not_depend_on_the_other_inputs(four, capsys) -> None:
    """``purify /abs/a.png rel/b.png --out p`` mirrored the absolute path under p (p/tmp/...), while a.png alone
    went to p/a.png: each output is now --out / the input's file name, whatever else is given."""
    _png(four / "elsewhere" / "deep" / "a.png", 11)
    absolute = str(four / "elsewhere" / "deep" / "a.png")
    together = _run(["purify", absolute, "in/n1.png", "--weights", WEIGHTS, "--out", "together"], capsys)
    assert together[0] == 0, together[2]
    assert sorted(_snapshot(four / "together")) == ["a.png", "n1.png"]
    for argv in ([absolute], ["in/n1.png"]):
        assert _run(["purify", *argv, "--weights", WEIGHTS, "--out", "alone"], capsys)[0] == 0
    assert _snapshot(four / "alone") == _snapshot(four / "together")


def test_two_inputs_of_one_file_name_are_refused_with_the_reason(four, capsys) -> None:
    _png(four / "in" / "a" / "n0.png", 12)
    code, out, err = _run(["purify", "in/n0.png", "in/a/n0.png", "--weights", WEIGHTS, "--out", "p"], capsys)
    assert code == 2 and out == "" and len(err.splitlines()) == 1
    assert "in/n0.png and in/a/n0.png" in err and "file name" in err and not (four / "p").exists()


def test_purify_without_weights_uses_the_default_and_says_what_the_gate_did(four, capsys) -> None:
    """``purify photo.jpg`` needs no --weights (the default ImageNet weights), and reports per image whether the
    gate opened and the PSNR to the input, then a summary line (it said nothing: a closed gate leaves the photo
    unchanged to 60 dB)."""
    from recondefense.defense import DEFAULT_IMAGENET_WEIGHTS

    _rgb(four / "in" / "photo.png", 3)
    code, out, err = _run(["purify", "in/photo.png", "--out", "p"], capsys)
    assert code == 0, err
    code, named, err = _run(["purify", "in/photo.png", "--weights", DEFAULT_IMAGENET_WEIGHTS, "--out", "q"], capsys)
    assert code == 0, err
    assert (four / "p" / "photo.png").read_bytes() == (four / "q" / "photo.png").read_bytes()
    details = _details(out)
    assert list(details) == ["in/photo.png -> p/photo.png"]
    detail = details["in/photo.png -> p/photo.png"]
    assert re.fullmatch(r"gate (open|closed) [01]\.\d\d, PSNR \d+\.\d dB to the input", detail), detail
    summary = out.splitlines()[-1]
    assert summary.startswith(f"purified 1 image(s) with {DEFAULT_IMAGENET_WEIGHTS}: gate ") and "dB" in summary


def test_an_ungated_defense_reports_the_psnr(four, capsys) -> None:
    code, out, err = _run(["purify", "in/n0.png", "in/n1.png", "--weights", WEIGHTS, "--out", "p"], capsys)
    assert code == 0, err
    details = _details(out)
    assert list(details) == ["in/n0.png -> p/n0.png", "in/n1.png -> p/n1.png"]
    assert all(re.fullmatch(r"PSNR \d+\.\d dB to the input", d) for d in details.values()), details
    assert re.fullmatch(
        rf"purified 2 image\(s\) with {WEIGHTS}: PSNR to the inputs \d+\.\d to \d+\.\d dB", out.splitlines()[-1]
    )


def test_the_gate_of_a_defense_per_image() -> None:
    from recondefense.defense import DEFAULT_IMAGENET_WEIGHTS

    gated = ReconstructiveDefense.from_pretrained(DEFAULT_IMAGENET_WEIGHTS)
    gate = gated.gate(torch.rand(2, 3, 20, 30))
    assert gate.shape == (2,) and ((0 <= gate) & (gate <= 1)).all()
    assert gated.gate(torch.rand(3, 20, 30)).shape == (1,)
    assert ReconstructiveDefense.from_pretrained(WEIGHTS).gate(torch.rand(1, 1, 8, 8)) is None
    with pytest.raises(ValueError, match="pixel values in"):
        gated.gate(torch.rand(1, 3, 8, 8) * 3)
