"""A defense with some of its inference settings changed, the same tensors (or another corruption purifier): a
candidate for validation.

    python scripts/config_variant.py --weights NAME_OR_FOLDER --set strong_above=0.2 \
        [--set corruption_strength=0.5 --set corruption_noise_range=0.1,0.3] --out runs/candidates/NAME

Each ``--set KEY=VALUE`` changes one :class:`~recondefense.purifier_config.PurifierConfig` field that does not
change the network's tensors (the thresholds and shares of a gated or routed purifier, :data:`SETTINGS`); a value
with commas is a list of numbers. The folder written holds the same ``model.safetensors`` tensors and a config.json
whose ``meta`` names the original and this command, so ``recondefense evaluate --defenses OUT`` measures exactly
what the settings change. ``--corruption WEIGHTS`` (residual weights, e.g. a denoiser's training run) puts another
corruption purifier behind a routed defense's route 2, every other tensor and setting kept; ``--strong WEIGHTS``
(paper-AE weights, e.g. a long run's checkpoint) another strong purifier on the images its gate flags; ``--fog FILE`` (a
detector of ``scripts/train_fog_detector.py``) gives a routed defense a fog step, with ``--set fog_range=LOW,HIGH``,
``--brightness FILE`` (its ``--corruption brightness`` detector) a brightness step, with ``--set
brightness_range=LOW,HIGH``, and ``--snow FILE`` (its ``--corruption snow`` detector) a snow step, with ``--set
snow_range=LOW,HIGH``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import torch
from safetensors.torch import load_file

from recondefense import ReconstructiveDefense
from recondefense.purifier_config import ARCHITECTURE_KEYS, INT_RANGES
from recondefense.train.setup import load_start

#: The fields a variant may change: a routed purifier's inference settings (the thresholds and shares), not the
#: shape of any tensor (the channels, widths, depths and the skip).
_SHAPES = {*INT_RANGES, "skip", "widths", "strong_widths", "inner"}
SETTINGS = tuple(key for key in ARCHITECTURE_KEYS["routed"] if key not in _SHAPES)

#: The detectors a routed defense may be given, by step (``--fog``, ``--brightness``, ``--snow``; ``PurifierConfig``
#: fields ``<step>_range`` and ``<step>_width``, tensors under ``autoencoder.<step>.``).
DETECTOR_STEPS = ("fog", "brightness", "snow")


def parse_setting(text: str) -> tuple[str, object]:
    """``KEY=VALUE`` -> ``(key, value)``: ``true`` or ``false``, a number, or a list of numbers where VALUE holds
    commas.

    Raises:
        argparse.ArgumentTypeError: no ``=``, a key not in :data:`SETTINGS`, or a value that is not numbers.
    """
    key, sep, value = text.partition("=")
    if not sep or key not in SETTINGS:
        raise argparse.ArgumentTypeError(f"{text!r}: expected KEY=VALUE with KEY one of {', '.join(SETTINGS)}")
    if value in ("true", "false"):
        return key, value == "true"
    try:
        numbers = [float(v) for v in value.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a number or numbers separated by commas") from None
    return key, numbers if "," in value else numbers[0]


def swapped(state: dict, prefix: str, part: dict) -> dict:
    """``state`` with the tensors under ``prefix`` replaced by ``part``'s (its keys without the prefix)."""
    kept = {k: v for k, v in state.items() if not k.startswith(prefix)}
    return {**kept, **{prefix + k: v for k, v in part.items()}}


#: The purifiers a routed defense may be given from other weights (``--corruption``, ``--strong``): the weights'
#: ``arch``, and the ``PurifierConfig`` fields their hyper-parameters set (tensors under ``autoencoder.<part>.``).
PURIFIER_PARTS: dict[str, tuple[str, Callable[[dict], dict]]] = {
    "corruption": ("residual", lambda h: {"corruption_width": h["width"], "corruption_depth": h["depth"]}),
    "strong": ("recon", lambda h: {"strong_widths": tuple(h["widths"])}),
}


def variant(
    defense: ReconstructiveDefense,
    changes: dict,
    meta: dict,
    parts: dict[str, ReconstructiveDefense] | None = None,
    detectors: dict[str, dict[str, torch.Tensor]] | None = None,
) -> ReconstructiveDefense:
    """``defense`` with the config fields ``changes`` set (checked), its tensors copied, ``meta`` its config's;
    with ``parts`` (weights by part of :data:`PURIFIER_PARTS`) a routed ``defense``'s corruption or strong purifier
    is that one instead (its sizes with it), with ``detectors`` (:class:`~recondefense.haze.FogDetector` state
    dicts by step of :data:`DETECTOR_STEPS`) its fog, brightness or snow detector (``changes`` or the defense must give
    the step's ``<step>_range``), every other tensor and setting kept.

    Raises:
        ValueError: a value out of range (:meth:`~recondefense.purifier_config.PurifierConfig.validate`), a
            change that adds or drops tensors (``deblur_sharpness_range`` on a defense without a deblurring
            purifier), a part whose weights are not of its ``arch``, or a ``defense`` that is not routed or lacks
            the part (a strong purifier).
    """
    state = dict(defense.state_dict())
    for part, weights in (parts or {}).items():
        arch, sizes = PURIFIER_PARTS[part]
        prefix = f"autoencoder.{part}."
        has_part = any(k.startswith(prefix) for k in state)
        if defense.arch != "routed" or weights.arch != arch or not has_part:
            raise ValueError(
                f"--{part} replaces a routed defense's {part} purifier by {arch!r} weights; got a {defense.arch!r} "
                f"defense {'with' if has_part else 'without'} one and {weights.arch!r} weights"
            )
        changes = {**changes, **sizes(weights.hyperparameters)}
        state = swapped(state, prefix, weights.autoencoder.state_dict())
    for step, detector in (detectors or {}).items():
        if defense.arch != "routed":
            raise ValueError(f"--{step} gives a routed defense a {step} detector; got a {defense.arch!r} defense")
        changes = {**changes, f"{step}_width": int(detector["features.0.weight"].shape[0])}
        state = swapped(state, f"autoencoder.{step}.", detector)
    config = replace(defense.purifier_config, **changes).validate()
    out = ReconstructiveDefense.from_config(config, meta=meta)
    added = sorted(set(out.state_dict()) ^ set(state))
    if added:
        raise ValueError(f"{sorted(changes)} would change the network's tensors ({added[0]}, ...): compose instead")
    out.load_state_dict(state)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", required=True, help="defense name, hub id or weights folder")
    parser.add_argument("--set", dest="changes", type=parse_setting, action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument(
        "--corruption",
        help="residual weights (name, folder or a training run's checkpoint.safetensors) that replace a routed "
        "defense's corruption purifier",
    )
    parser.add_argument(
        "--strong",
        help="paper-AE weights (name, folder or a training run's checkpoint.safetensors) that replace a routed "
        "defense's strong purifier",
    )
    parser.add_argument("--fog", type=Path, help="a fog detector (fog.safetensors) for a routed defense")
    parser.add_argument("--brightness", type=Path, help="a brightness detector (brightness.safetensors), likewise")
    parser.add_argument("--snow", type=Path, help="a snow detector (snow.safetensors), likewise")
    parser.add_argument("--out", required=True, type=Path, help="the new weights folder")
    args = parser.parse_args(argv)
    files = {step: getattr(args, step) for step in DETECTOR_STEPS if getattr(args, step) is not None}
    if not args.changes and not args.corruption and not args.strong and not files:
        parser.error(
            "nothing to change: give --set KEY=VALUE, --corruption WEIGHTS, --strong WEIGHTS, --fog FILE, "
            "--brightness FILE or --snow FILE"
        )
    original = ReconstructiveDefense.from_pretrained(args.weights)
    parts = {part: load_start(getattr(args, part)) for part in PURIFIER_PARTS if getattr(args, part)}
    command = "python scripts/config_variant.py " + " ".join(sys.argv[1:] if argv is None else argv)
    meta = {**original.meta, "variant_of": args.weights, "variant_command": command}
    for part, weights in parts.items():  # weights, or a run's checkpoint
        meta[f"variant_{part}"] = getattr(args, part)
        meta[f"variant_{part}_command"] = weights.meta.get("command")
    detectors = {step: load_file(str(file)) for step, file in files.items()}
    for step, file in files.items():
        report = file.parent / "validation.json"
        meta[f"variant_{step}"] = str(file)
        meta[f"variant_{step}_command"] = json.loads(report.read_text())["command"] if report.exists() else None
    if original.meta.get("validation"):  # the card's table was measured before the settings changed
        meta["validation_note"] = f"measured on {args.weights} before these settings changed"
    try:
        new = variant(original, dict(args.changes), meta, parts, detectors)
    except ValueError as err:
        parser.error(str(err))
    new.save_pretrained(args.out)
    changed = {
        "out": str(args.out),
        "changed": dict(args.changes),
        "corruption": args.corruption,
        "strong": args.strong,
    }
    print(json.dumps({**changed, **{step: str(file) for step, file in files.items()}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
