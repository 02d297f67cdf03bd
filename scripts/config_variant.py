"""A defense with some of its inference settings changed, the same tensors: a candidate for validation.

    python scripts/config_variant.py --weights NAME_OR_FOLDER --set strong_above=0.2 \
        [--set corruption_strength=0.5 --set corruption_noise_range=0.1,0.3] --out runs/candidates/NAME

Each ``--set KEY=VALUE`` changes one :class:`~recondefense.purifier_config.PurifierConfig` field that does not
change the network's tensors (the thresholds and shares of a gated or routed purifier, :data:`SETTINGS`); a value
with commas is a list of numbers. The folder written holds the same ``model.safetensors`` tensors and a config.json
whose ``meta`` names the original and this command, so ``recondefense evaluate --defenses OUT`` measures exactly
what the settings change.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

from recondefense import ReconstructiveDefense

#: The fields a variant may change: inference settings, not the shapes of any tensor.
SETTINGS = (
    "bypass_below",
    "pass_smoothing",
    "contrast_floor",
    "contrast_target",
    "black_point_floor",
    "strong_above",
    "corruption_strength",
    "corruption_noise_range",
    "deblur_sharpness_range",
    "deblur_unsharp",
    "deblur_ratio_range",
    "brightness_veto",
    "veto_black_point",
    "veto_clipped",
    "impulse_range",
    "impulse_noise_range",
)


def parse_setting(text: str) -> tuple[str, object]:
    """``KEY=VALUE`` -> ``(key, value)``: a number, or a list of numbers where VALUE holds commas.

    Raises:
        argparse.ArgumentTypeError: no ``=``, a key not in :data:`SETTINGS`, or a value that is not numbers.
    """
    key, sep, value = text.partition("=")
    if not sep or key not in SETTINGS:
        raise argparse.ArgumentTypeError(f"{text!r}: expected KEY=VALUE with KEY one of {', '.join(SETTINGS)}")
    try:
        numbers = [float(v) for v in value.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a number or numbers separated by commas") from None
    return key, numbers if "," in value else numbers[0]


def variant(defense: ReconstructiveDefense, changes: dict, meta: dict) -> ReconstructiveDefense:
    """``defense`` with the config fields ``changes`` set (checked), its tensors copied, ``meta`` its config's.

    Raises:
        ValueError: a value out of range (:meth:`~recondefense.purifier_config.PurifierConfig.validate`), or a
            change that adds or drops tensors (``deblur_sharpness_range`` on a defense without a deblurring purifier).
    """
    config = replace(defense.purifier_config, **changes).validate()
    out = ReconstructiveDefense.from_config(config, meta=meta)
    added = sorted(set(out.state_dict()) ^ set(defense.state_dict()))
    if added:
        raise ValueError(f"{sorted(changes)} would change the network's tensors ({added[0]}, ...): compose instead")
    out.load_state_dict(defense.state_dict())
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", required=True, help="defense name, hub id or weights folder")
    parser.add_argument(
        "--set", dest="changes", type=parse_setting, action="append", required=True, metavar="KEY=VALUE"
    )
    parser.add_argument("--out", required=True, type=Path, help="the new weights folder")
    args = parser.parse_args(argv)
    original = ReconstructiveDefense.from_pretrained(args.weights)
    command = "python scripts/config_variant.py " + " ".join(sys.argv[1:] if argv is None else argv)
    meta = {**original.meta, "variant_of": args.weights, "variant_command": command}
    if original.meta.get("validation"):  # the card's table was measured before the settings changed
        meta["validation_note"] = f"measured on {args.weights} before these settings changed"
    try:
        new = variant(original, dict(args.changes), meta)
    except ValueError as err:
        parser.error(str(err))
    new.save_pretrained(args.out)
    print(json.dumps({"out": str(args.out), "changed": dict(args.changes)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
