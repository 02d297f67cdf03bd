"""The ``recondefense`` console script: ``train``, ``evaluate``, ``certify``, ``purify``, ``weights``."""

from __future__ import annotations

import argparse
import os
import struct
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from .files import new_file_mode, writable_folder_problem, write_atomic

if TYPE_CHECKING:
    import torch


class _UsageError(Exception):
    """A bad command line or input, reported as one ``error:`` line on stderr (exit code 2)."""


def _purify_plan(inputs: dict[Path, str], out: Path, overwrite: bool = False) -> list[tuple[Path, Path]]:
    """``(input, output)`` pairs for ``inputs`` (existing absolute paths -> as typed): each output is ``out`` /
    the input's file name, as ``.png``, whatever the other inputs and however the path was typed. Raises
    :class:`_UsageError` when ``out`` is the folder of an input, is a file or is not writable, two inputs would
    share an output (same file name), an output would overwrite an input (same path, symlink or hard link), or
    outputs exist already (allowed with ``overwrite``, unless read-only; a symlink there is replaced by the file,
    its target is never written)."""
    if out.exists() and not out.is_dir():
        raise _UsageError(f"--out {out} is a file, not a folder")
    out_real = out.resolve()
    for src in inputs:
        if src.parent.resolve() == out_real:
            raise _UsageError(
                f"--out {out} is the input folder of {inputs[src]}: pick another folder (inputs are never overwritten)"
            )
    plan = [(p, out / Path(p.name).with_suffix(".png")) for p in inputs]
    by_output: dict[Path, list[Path]] = {}
    for src, dst in plan:
        by_output.setdefault(dst.resolve(), []).append(src)
    clashes = [" and ".join(inputs[src] for src in srcs) for srcs in by_output.values() if len(srcs) > 1]
    if clashes:
        raise _UsageError(
            f"inputs would be written to the same output: {'; '.join(clashes)} (outputs are named after the input's "
            "file name: purify them into separate --out folders)"
        )
    sources = {src.resolve(): src for src, _ in plan}
    stats = {}
    for src in inputs:
        st = src.stat()
        stats[st.st_dev, st.st_ino] = src
    for _, dst in plan:
        same = sources.get(dst.resolve())
        if same is None and dst.is_file():  # a hard link to an input
            st = dst.stat()
            same = stats.get((st.st_dev, st.st_ino))
        if same is not None:
            raise _UsageError(f"{dst} would overwrite the input {inputs[same]}: pick another --out")
        if dst.is_dir():
            raise _UsageError(f"output {dst} is an existing folder")
    problem = writable_folder_problem(out)
    if problem:
        raise _UsageError(f"cannot write to --out {out}: {problem}")
    existing = [dst for _, dst in plan if os.path.lexists(dst)]
    if existing and not overwrite:
        shown = ", ".join(map(str, existing[:10])) + (f" and {len(existing) - 10} more" if len(existing) > 10 else "")
        raise _UsageError(
            f"{len(existing)} output(s) exist already, nothing written: {shown}: pass --overwrite to replace them, "
            "or pick another --out"
        )
    read_only = [dst for dst in existing if not dst.is_symlink() and not os.access(dst, os.W_OK)]
    if read_only:
        raise _UsageError(
            f"output(s) {', '.join(map(str, read_only))} are read-only, nothing written: make them writable "
            "(chmod u+w) or pick another --out"
        )
    return plan


class _ImageError(Exception):
    """Why one input file cannot be purified, as a phrase (e.g. ``animated GIF with 3 frames: ...``)."""


#: EXIF orientation (2-8) -> the flips and transposition that undo it on a ``(C, H, W)`` tensor.
_ORIENTATIONS = {
    2: (False, (-1,)),
    3: (False, (-2, -1)),
    4: (False, (-2,)),
    5: (True, ()),
    6: (True, (-1,)),
    7: (True, (-2, -1)),
    8: (True, (-2,)),
}


def _webp_orientation(data: bytes) -> int:
    """The EXIF orientation (1-8) of a WebP file, 1 when it has none (torchvision applies only JPEG and PNG's)."""
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        return 1
    import io

    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            return int(image.getexif().get(0x0112, 1))
    except Exception:  # an unreadable EXIF block: no orientation, as viewers do
        return 1


def _png_frames(data: bytes) -> int:
    """The frame count of an animated PNG (its ``acTL`` chunk, before the image data); 1 for any other file.
    torchvision decodes only an APNG's default image, so the others would be lost silently."""
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        return 1
    pos = 8
    while pos + 12 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        if kind == b"acTL" and length >= 8:
            return struct.unpack(">I", data[pos + 8 : pos + 12])[0]
        if kind in (b"IDAT", b"IEND"):
            break
        pos += 12 + length
    return 1


def _decode_rgb(data: bytes) -> torch.Tensor:
    """An image file's bytes -> ``(3, H, W)`` float32 RGB pixels in [0, 1], upright (EXIF orientation applied),
    8- or 16-bit, alpha dropped (a grayscale file has three equal channels: :func:`_is_gray`). Raises
    :class:`_ImageError` for an undecodable or animated file, or one too large to decode in memory."""
    import torch
    from torchvision.io import ImageReadMode, decode_image

    frames = _png_frames(data)
    if frames > 1:
        raise _ImageError(f"animated PNG with {frames} frames: purify takes still images, save one frame as PNG first")
    try:  # (RGB, not UNCHANGED: that gives a palette PNG's indices and a CMYK JPEG's ink)
        image = decode_image(
            torch.frombuffer(bytearray(data), dtype=torch.uint8), mode=ImageReadMode.RGB, apply_exif_orientation=True
        )
    except MemoryError:
        raise _ImageError("too large to decode: out of memory") from None
    except (RuntimeError, ValueError) as err:
        if "alloc" in str(err).lower():
            raise _ImageError("too large to decode: out of memory") from None
        if "animated" in str(err).lower():
            raise _ImageError("animated WebP: purify takes still images, save one frame as PNG first") from None
        raise _ImageError("not a decodable PNG, JPEG, WebP or GIF image") from None
    if image.ndim == 4:  # GIF frames
        if len(image) > 1:
            raise _ImageError(
                f"animated GIF with {len(image)} frames: purify takes still images, save one frame as PNG first"
            )
        image = image[0]
    flip = _ORIENTATIONS.get(_webp_orientation(data))
    if flip:
        image = image.transpose(-2, -1) if flip[0] else image
        image = image.flip(flip[1]) if flip[1] else image
    scale = 65535 if image.dtype == torch.uint16 else 255
    pixels = image.to(torch.float32) / scale
    return pixels[:3] if pixels.shape[0] >= 3 else pixels[:1].expand(3, -1, -1)


def _is_gray(pixels: torch.Tensor) -> bool:
    """Whether ``(3, H, W)`` pixels are a grayscale image (three equal channels)."""
    return bool((pixels[0] == pixels[1]).all() and (pixels[1] == pixels[2]).all())


def _for_channels(pixels: torch.Tensor, channels: int | None) -> torch.Tensor:
    """``(3, H, W)`` pixels as the ``(C, H, W)`` a ``channels``-channel defense takes (None: 3). Raises
    :class:`_ImageError` for a colour image and a grayscale defense (as the Python API refuses the mismatch)."""
    if channels != 1:
        return pixels
    if not _is_gray(pixels):
        raise _ImageError(
            "a colour image, but these weights take 1-channel (grayscale) images: use weights for colour images "
            "(--weights default) or convert the image to grayscale first"
        )
    return pixels[:1]


def _decode(data: bytes, channels: int | None) -> torch.Tensor:
    """An image file's bytes -> the ``(C, H, W)`` float32 pixels in [0, 1] a ``channels``-channel defense takes
    (1: grayscale, 3 or None: RGB), upright, 8- or 16-bit. Raises :class:`_ImageError` for an undecodable or
    animated file, one too large to decode, or a colour image for a grayscale defense."""
    return _for_channels(_decode_rgb(data), channels)


def _read_images(paths: dict[Path, str], channels: int | None) -> list[bytes]:
    """Every file's bytes (``paths``: absolute -> as typed), each checked to decode with :func:`_decode` for
    a ``channels``-channel defense; raises :class:`_UsageError` naming every missing, unreadable, undecodable
    or animated file."""
    contents, bad = [], []
    for path in paths:
        try:
            data = path.read_bytes()
        except OSError as err:
            bad.append(f"{paths[path]} ({(err.strerror or str(err)).lower()})")
            continue
        if not data:
            bad.append(f"{paths[path]} (empty file)")
            continue
        try:
            _decode(data, channels)
        except _ImageError as err:
            bad.append(f"{paths[path]} ({err})")
            continue
        contents.append(data)
    if bad:
        raise _UsageError(f"{len(bad)} of {len(paths)} input(s) cannot be read, nothing written: {', '.join(bad)}")
    return contents


def _purify(args: argparse.Namespace) -> int:
    """Purify every input into ``--out`` (one PNG per input, named after it). Every check runs before anything
    is written: the weights, every input's decoding (a colour image for grayscale weights is refused), then the
    output paths (no input is ever overwritten, no existing output without ``--overwrite``). Each output is
    written whole or not at all; an image that fails then (out of memory, disk full) is reported as ``error:``
    and skipped, the others are still written, and the exit code is 1. A grayscale input is written back in
    grayscale. Each written image's line says how far a gated defense's gate opened and the PSNR of the output to
    the input; a summary line ends the run."""
    import torch
    from torchvision.io import encode_png
    from torchvision.transforms.v2.functional import rgb_to_grayscale

    from .defense import ReconstructiveDefense
    from .metrics import psnr

    given: dict[Path, str] = {}  # absolute path -> as typed; a file given twice is purified once
    for path in args.images:
        given.setdefault(Path(os.path.abspath(path)), path)
    try:
        try:
            defense = ReconstructiveDefense.from_pretrained(args.weights)
        except (OSError, ValueError) as err:
            raise _UsageError(f"--weights {args.weights}: {err}") from None
        contents = _read_images(given, defense.channels)
        plan = _purify_plan(given, Path(args.out), overwrite=args.overwrite)
    except _UsageError as err:
        print("error: " + " ".join(str(err).splitlines()), file=sys.stderr)
        return 2
    weights = str(args.weights)
    if weights == "default":
        from .weights import list_weights

        weights = list_weights().default or weights
    mode = new_file_mode()
    failed = 0
    gates: list[float] = []
    psnrs: list[float] = []
    for (src, dst), data in zip(plan, contents):
        try:
            with torch.inference_mode():
                pixels = _decode_rgb(data)
                image = _for_channels(pixels, defense.channels)
                purified = defense(image)
                gate = defense.gate(image)
                if purified.shape[0] == 3 and _is_gray(pixels):  # a grayscale input comes back grayscale
                    purified, image = rgb_to_grayscale(purified), image[:1]
                quality = psnr(purified, image).item()
                png = encode_png((purified * 255).round().byte()).numpy().tobytes()
            del purified, image, pixels
            dst.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(dst, png, mode)
        except (_ImageError, OSError, RuntimeError, ValueError, MemoryError) as err:
            failed += 1
            why = (err.strerror or str(err)) if isinstance(err, OSError) else str(err) or type(err).__name__
            print(f"error: {given[src]} -> {dst} not written: {' '.join(why.split())[:300]}", file=sys.stderr)
            continue
        psnrs.append(quality)
        detail = f"PSNR {quality:.1f} dB to the input"
        if gate is not None:
            gates.append(gate.item())
            detail = f"gate {'open' if gates[-1] >= 0.5 else 'closed'} {gates[-1]:.2f}, {detail}"
        print(f"{given[src]} -> {dst} ({detail})")
    if psnrs:
        print(_purify_summary(weights, psnrs, gates))
    if failed:
        print(
            f"error: {failed} of {len(plan)} image(s) not written (above); the {len(plan) - failed} "
            "printed with -> are complete",
            file=sys.stderr,
        )
        return 1
    return 0


def _purify_summary(weights: str, psnrs: list[float], gates: list[float]) -> str:
    """The last line of ``purify``: how many images, and the PSNR range to the inputs or what the gate did."""
    head = f"purified {len(psnrs)} image(s) with {weights}: "
    if not gates:
        return head + f"PSNR to the inputs {min(psnrs):.1f} to {max(psnrs):.1f} dB"
    opened = [p for g, p in zip(gates, psnrs) if g >= 0.5]
    closed = [p for g, p in zip(gates, psnrs) if g < 0.5]
    parts = []
    if opened:
        parts.append(f"gate opened on {len(opened)} (purified; PSNR {min(opened):.1f} to {max(opened):.1f} dB)")
    if closed:
        parts.append(
            f"gate closed on {len(closed)} (left almost unchanged: the gate saw no attack; PSNR {min(closed):.1f} "
            f"to {max(closed):.1f} dB)"
        )
    return head + ", ".join(parts)


def _weights(args: argparse.Namespace) -> int:
    from .weights import DEFAULT_ALIAS, get_weights, list_weights

    names = list_weights()
    for name in names:
        entry = get_weights(name)
        mark = f" (default: --weights {DEFAULT_ALIAS})" if name == names.default else ""
        print(
            f"{name}{mark}: {entry.dataset or '?'}, classifier {entry.classifier or '?'}, attack {entry.attack or '?'}"
        )
    if not names:
        print("no weights shipped")
    return 0


#: ``recondefense --help``'s description (the module docstring is reStructuredText, shown here as plain text).
DESCRIPTION = "The recondefense console script: train, evaluate, certify, purify, weights."


#: ``recondefense purify --help``'s description.
PURIFY_DESCRIPTION = """\
Purify image files with a defense, writing one PNG per input under --out, named after the input's
file name (two inputs of one name are refused). A grayscale input is written in grayscale; each
line says the PSNR of the output to the input and, for gated weights such as the default, whether
the gate opened (closed: the image is left almost unchanged).

Everything is checked before anything is written: the weights, every input (decodable, not
animated, colour only for colour weights; 16-bit images are read at full precision, EXIF orientation
is applied) and the outputs (no input is overwritten, nor an existing file unless --overwrite).
Each PNG is written whole or not at all (a temporary file renamed into place). If an image fails
while purifying or writing (out of memory, disk full), an "error:" line names it, purify continues
with the others, and exits with code 1; the inputs printed with "->" are complete."""


def main(argv: list[str] | None = None) -> int:
    from . import __version__

    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="recondefense", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"recondefense {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("train", help="train a defense (see recondefense train --help)", add_help=False)
    sub.add_parser("evaluate", help="the paper's tables (see recondefense evaluate --help)", add_help=False)
    sub.add_parser(
        "certify", help="randomized-smoothing certificates (see recondefense certify --help)", add_help=False
    )
    purify = sub.add_parser(
        "purify",
        help="purify image files with a defense, writing PNGs",
        description=PURIFY_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    purify.add_argument("images", nargs="+", help="PNG, JPEG, WebP or GIF files (8 or 16 bit, still images)")
    purify.add_argument(
        "--weights",
        default="default",
        help="shipped name (recondefense weights lists them), hub repo id or folder (default: default, the default "
        "ImageNet weights)",
    )
    purify.add_argument("--out", default="purified", help="output folder (default: purified)")
    purify.add_argument(
        "--overwrite", action="store_true", help="replace existing files in --out (default: refuse before writing)"
    )
    sub.add_parser(
        "weights",
        help="list the shipped weights",
        description="List the shipped weights: each name (for --weights, from_pretrained and Defended) with its data, the "
        "classifier it was trained against and its attack; the name 'default' loads the one marked default.",
    )
    if argv and argv[0] == "train":
        from .train.__main__ import main as train_main

        return train_main(argv[1:])
    if argv and argv[0] == "evaluate":
        from .evaluate import main as evaluate_main

        return evaluate_main(argv[1:])
    if argv and argv[0] == "certify":
        from .certify import main as certify_main

        return certify_main(argv[1:])
    args = parser.parse_args(argv)
    return {"purify": _purify, "weights": _weights}[args.command](args)


if __name__ == "__main__":
    raise SystemExit(main())
