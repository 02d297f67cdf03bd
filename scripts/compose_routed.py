"""Put trained purifiers behind a routed gate: the gate of a routed (or gated) weights folder, the adversarial
purifier of another, the corruption purifier of a third (and, optionally, a wider adversarial purifier and a
deblurring purifier in front of the gate).

    python scripts/compose_routed.py --gate runs/routed-gate/final --adversarial imagenet-efficientnet_lite0_lite2-pgd \
        --corruption runs/corruption/final --out runs/routed --bypass-below 0.05 \
        --data objects:3072 --classifier imagenet-efficientnet_lite0 --val-limit 128

Why this equals training the whole routed network: its gate is trained by the route loss alone (``recondefense train
--arch routed --freeze bottleneck,corruption --gate-weight 1 --ce-weight 0 --visual-weight 0``), a cross-entropy
on the gate's route logits that never looks at the experts, and each expert is trained alone on its own triplets
(the corruption purifier as a plain ``--arch residual`` run, whose guidance would reach it through the routed
network only scaled by its route probability). A gated gate (``--gate`` of gated weights) fills route 1 (its logit
against route 0: it opens as it did) and leaves route 2 at its start, nearly shut. The composition is measured on
the validation split: under the paper's PGD against the classifier alone, and under the corruptions of
``--corruptions`` (accuracy and the mean route probabilities on clean, attacked and corrupted images).
"""

from __future__ import annotations

import argparse
import re
import sys

import torch

from recondefense import ReconstructiveDefense
from recondefense.arguments import number_pair
from recondefense.classifiers import load_classifier
from recondefense.corruptions import CORRUPTIONS
from recondefense.data import load_dataset
from recondefense.purifier_config import PurifierConfig
from recondefense.train.attack_specs import corruption_spec
from recondefense.train.config import TrainConfig
from recondefense.train.triplets import TripletMaker
from recondefense.train.validation import small_validation_note, validate

#: The corruptions trained on at ImageNet scale: the 15 ImageNet-C ones but the four held out (the Makefile's
#: HELD_OUT_CORRUPTIONS: impulse_noise, motion_blur, frost, pixelate), severities 1-5.
TRAINED_CORRUPTIONS = (
    "corruption:gaussian_noise,shot_noise,defocus_blur,glass_blur,zoom_blur,snow,fog,brightness,contrast,"
    "elastic_transform,jpeg_compression@1-5"
)


def _part(defense: ReconstructiveDefense, flag: str, kinds: dict[str, str]) -> dict[str, torch.Tensor]:
    """The state dict of the purifier ``defense`` holds for ``flag``: the whole network for an arch mapped to ``""``
    in ``kinds``, the sub-network named there (e.g. ``"bottleneck"``) for the others."""
    if defense.arch not in kinds:
        raise ValueError(f"{flag}: expected weights of arch {' or '.join(kinds)}, got {defense.arch!r}")
    prefix = kinds[defense.arch]
    state = defense.autoencoder.state_dict()
    if not prefix:
        return state
    return {k.removeprefix(prefix + "."): v for k, v in state.items() if k.startswith(prefix + ".")}


#: One expert's part of a routed card's guidance line: "kl (adversarial purifier), kl with ... (corruption purifier)".
_ROLE_GUIDANCE = re.compile(r"\s*(?P<how>[^,]+?) \((?P<role>adversarial|corruption) purifier\)")


def _part_guidance(part: ReconstructiveDefense, role: str) -> str:
    """How ``part`` was guided in ``role`` (``"adversarial"`` or ``"corruption"``): a composed part's line for that
    role, or the part's own run (a corruption expert's with its clean-consistency weight)."""
    line = str(part.meta.get("guidance"))
    roles = {match["role"]: match["how"] for match in _ROLE_GUIDANCE.finditer(line)}
    if roles:
        return roles.get(role, line)
    if role == "corruption":
        return f"{line} with clean-consistency weight {part.meta.get('clean_weight')}"
    return line


def _guidance(adversarial: ReconstructiveDefense, corruption: ReconstructiveDefense) -> str:
    """How the two experts were guided, for the card: one line naming each expert's guidance."""
    return (
        f"{_part_guidance(adversarial, 'adversarial')} (adversarial purifier), "
        f"{_part_guidance(corruption, 'corruption')} (corruption purifier)"
    )


def _attack(gate: ReconstructiveDefense, adversarial: ReconstructiveDefense) -> str | None:
    """What made the triplets, for the card: the gate's, and the adversarial purifier's where it differs."""
    routes, purifier = gate.meta.get("attack"), adversarial.meta.get("attack")
    if purifier is None or purifier == routes or adversarial.arch == "routed":
        return routes
    return f"{routes} (the gate's routes); {purifier} (the adversarial purifier)"


def compose(
    gate: ReconstructiveDefense,
    adversarial: ReconstructiveDefense,
    corruption: ReconstructiveDefense,
    meta: dict | None = None,
    bypass_below: float | tuple[float, float] = 0.0,
    pass_smoothing: float = 0.0,
    noise_route_above: float | None = None,
    contrast_floor: float = 0.0,
    contrast_target: float = 0.2,
    black_point_floor: float = 0.0,
    gate_open_at: float | None = None,
    strong: ReconstructiveDefense | None = None,
    strong_above: float = 0.5,
    corruption_strength: float = 1.0,
    corruption_noise_range: tuple[float, float] = (0.1, 0.3),
    deblur: ReconstructiveDefense | None = None,
    deblur_sharpness_range: tuple[float, float] = (0.04, 0.1),
    brightness_veto: float = 0.0,
) -> ReconstructiveDefense:
    """A routed defense with ``gate``'s gate (routed, or gated: into route 1), ``adversarial``'s purifier (recon or
    residual weights, or the purifier of gated or routed ones) and ``corruption``'s (residual weights, or the
    corruption purifier of routed ones), each copied exactly; ``meta`` goes into its config.json; ``bypass_below``:
    an expert skips the images whose route probability is below it, at inference (one number for both experts,
    or a pair: adversarial, corruption); ``pass_smoothing``: what the pass
    route gives (:class:`~recondefense.purifier_config.PurifierConfig`); ``noise_route_above``: the images whose
    route-1 logit exceeds it go to the corruption purifier (:meth:`~recondefense.routing.RouteMixture.route_above`);
    ``contrast_floor``, ``contrast_target``, ``black_point_floor``: washed-out images are stretched and images lifted
    off black lowered first (:func:`~recondefense.levels.restore_levels`; floor 0: never); ``gate_open_at``: the gate recalibrated, after
    the noise route is placed, so that this old route-1 logit opens it halfway (every route's logit moves by
    ``-gate_open_at``: :meth:`~recondefense.gate.PerturbationGate.recalibrate`; None: as trained). A negative
    value gives every image more of the adversarial purifier's redrawing (at -4, most clean images' trained logit,
    clean images get half of it). ``strong`` (recon weights, or routed ones that hold a strong purifier): a wider
    AE that stands in for the adversarial purifier on the images whose route-1 probability is at least
    ``strong_above`` (:func:`~recondefense.blending.blend`). ``corruption_strength``, ``corruption_noise_range``: the
    share of its correction the corruption purifier applies, rising with the image's noise level
    (:class:`~recondefense.purifiers.ResidualPurifier`; strength 1: all of it). ``deblur`` (residual weights, or
    routed ones that hold a deblurring purifier): applied before the gate to the images whose
    :func:`~recondefense.levels.sharpness` is below ``deblur_sharpness_range[1]``, fully below its first number.
    ``brightness_veto``: the gate opens only where the image with its black point restored also reads above it
    (:func:`~recondefense.gate.veto_brightened`; 0: one reading).

    Raises:
        ValueError: weights of another arch or channel count than each part takes, or a gate of another size.
    """
    if gate.arch not in ("routed", "gated"):
        raise ValueError(f"--gate must name routed or gated weights, got arch {gate.arch!r}")
    channels = {part.channels for part in (gate, adversarial, corruption, strong, deblur) if part is not None}
    if len(channels) != 1:
        raise ValueError(f"the gate and the purifiers take different channel counts: {sorted(channels)}")
    kinds = {"recon": "", "residual": "", "gated": "bottleneck", "routed": "bottleneck"}
    adversarial_state = _part(adversarial, "--adversarial", kinds)
    corruption_state = _part(corruption, "--corruption", {"residual": "", "routed": "corruption"})
    inner = adversarial.arch if adversarial.arch in ("recon", "residual") else adversarial.hyperparameters["inner"]
    theirs, sizes = adversarial.hyperparameters, corruption.hyperparameters
    residual = corruption.arch == "residual"
    hyper = dict(gate.hyperparameters)
    hyper.update(
        {k: theirs[k] for k in ("width", "depth", "skip", "widths")},
        arch="routed",
        inner=inner,
        bypass_below=list(bypass_below) if isinstance(bypass_below, tuple) else bypass_below,
        pass_smoothing=pass_smoothing,
        contrast_floor=contrast_floor,
        contrast_target=contrast_target,
        black_point_floor=black_point_floor,
        corruption_width=sizes["width"] if residual else sizes["corruption_width"],
        corruption_depth=sizes["depth"] if residual else sizes["corruption_depth"],
        strong_widths=None,  # not the gate folder's own: a strong purifier only where one is given
        strong_above=strong_above,
        corruption_strength=corruption_strength,
        corruption_noise_range=corruption_noise_range,
        deblur_sharpness_range=None,  # as strong_widths: a deblurring purifier only where one is given
        brightness_veto=brightness_veto,
    )
    deblur_state = None
    if deblur is not None:
        deblur_state = _part(deblur, "--deblur", {"residual": "", "routed": "deblur"})
        sizes = deblur.hyperparameters
        wide, deep = ("width", "depth") if deblur.arch == "residual" else ("deblur_width", "deblur_depth")
        hyper.update(
            deblur_width=sizes[wide], deblur_depth=sizes[deep], deblur_sharpness_range=list(deblur_sharpness_range)
        )
    strong_state = None
    if strong is not None:  # its AE's widths as built (a recon AE of width and depth spelled out per block)
        strong_state = _part(strong, "--strong", {"recon": "", "routed": "strong"})
        strong_net = strong.autoencoder if strong.arch == "recon" else strong.autoencoder.strong
        hyper["strong_widths"] = list(strong_net.widths)
    defense = ReconstructiveDefense(**hyper, meta=meta)
    net = defense.autoencoder
    gate_state = {k.removeprefix("gate."): v for k, v in gate.autoencoder.state_dict().items() if k.startswith("gate.")}
    if gate.arch == "routed":
        net.gate.load_state_dict(gate_state)
    else:
        net.load_gate(gate_state)
    net.bottleneck.load_state_dict(adversarial_state)
    net.corruption.load_state_dict(corruption_state)
    if strong_state is not None:
        net.strong.load_state_dict(strong_state)
    if deblur_state is not None:
        net.deblur.load_state_dict(deblur_state)
    if noise_route_above is not None:
        net.route_above(noise_route_above)
    if gate_open_at is not None:
        net.gate.recalibrate(gate_open_at)
    return defense


def measure(
    defense: ReconstructiveDefense, data: str, classifier_name: str, val_limit: int, corruptions: str
) -> dict[str, float]:
    """Validation of ``defense`` on the val split of ``data``: under the paper's PGD against the classifier alone
    (:func:`~recondefense.train.validation.validate`'s keys), and under ``corruptions`` (the same keys prefixed with
    ``corruption_``: ``corruption_attacked_acc`` is the accuracy on corrupted images)."""
    classifier = load_classifier(classifier_name).eval()
    val_set = load_dataset(data, "val", classifier=classifier)
    results: dict[str, float] = {}
    for attack, prefix in (("pgd", ""), (corruptions, "corruption_")):
        config = TrainConfig(
            data=data, classifier=classifier_name, attack=attack, val_limit=val_limit, batch_size=16, progress=False
        )
        maker = TripletMaker(config, [classifier])
        found = validate(defense.autoencoder, classifier, maker, val_set, config, torch.device("cpu"))
        results |= {prefix + k: v for k, v in found.items() if not (prefix and k == "n")}
    return results


def _thresholds(text: str) -> float | tuple[float, float]:
    """``--bypass-below``: one number, or two (adversarial, corruption) separated by a comma."""
    values = tuple(float(v) for v in text.split(","))
    if len(values) not in (1, 2):
        raise argparse.ArgumentTypeError(f"{text!r}: expected one number or two separated by a comma")
    return values[0] if len(values) == 1 else values


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gate", required=True, help="routed or gated weights whose gate is kept (name or folder)")
    parser.add_argument(
        "--adversarial", required=True, help="the adversarial purifier: recon or residual weights (or gated ones)"
    )
    parser.add_argument(
        "--corruption", required=True, help="the corruption purifier: residual weights (or routed ones)"
    )
    parser.add_argument("--out", required=True, help="folder for the composed weights")
    parser.add_argument("--data", default="objects:3072", help="validation data spec (its val split)")
    parser.add_argument("--classifier", default="imagenet-efficientnet_lite0", help="validated classifier")
    parser.add_argument("--val-limit", type=int, default=128, help="validation images")
    parser.add_argument(
        "--corruptions",
        default=TRAINED_CORRUPTIONS,
        help="corruption[:names][@severities] the composition is also validated under (default: the 11 trained)",
    )
    parser.add_argument(
        "--bypass-below",
        type=_thresholds,
        default=0.0,
        help="at inference an expert skips the images whose route probability is below this (0: every expert runs); "
        "two numbers, ADVERSARIAL,CORRUPTION, give each expert its own (0,0.05: the adversarial purifier dense)",
    )
    parser.add_argument(
        "--pass-smoothing", type=float, default=0.0, help="share of a 3 x 3 blur the pass route gives (0: none)"
    )
    parser.add_argument(
        "--contrast-floor",
        type=float,
        default=0.0,
        help="images of a contrast (RMS deviation from their channel means) below this are stretched first (0: never)",
    )
    parser.add_argument("--contrast-target", type=float, default=0.2, help="the contrast washed-out images get")
    parser.add_argument(
        "--black-point-floor",
        type=float,
        default=0.0,
        help="images whose darkest 4 x 4 block has an HSV value of at least this are lowered by it first (0: never)",
    )
    parser.add_argument(
        "--noise-route-above",
        type=float,
        default=None,
        help="route 2 takes the images whose route-1 (adversarial) logit exceeds this: Gaussian-like noise opens a "
        "gated gate by hundreds, PGD by a few units (scripts/gate_logits.py); default: the gate's own route 2",
    )
    parser.add_argument(
        "--gate-open-at",
        type=float,
        default=None,
        help="recalibrate the gate to open halfway at this route-1 logit of the given gate (default: as trained); "
        "a negative value gives every image more of the adversarial purifier's redrawing",
    )
    parser.add_argument(
        "--strong",
        default=None,
        help="a wider AE (recon weights) that stands in for the adversarial purifier on the images the gate flags "
        "(route-1 probability at least --strong-above); default: none",
    )
    parser.add_argument(
        "--strong-above", type=float, default=0.5, help="the route-1 probability from which --strong takes over"
    )
    parser.add_argument(
        "--corruption-strength",
        type=float,
        default=1.0,
        help="the share of its correction the corruption purifier applies to images of little noise (1: all of it)",
    )
    parser.add_argument(
        "--corruption-noise-range",
        type=number_pair,
        default=(0.1, 0.3),
        help="LOW,HIGH: the estimated noise levels over which that share rises to all of it",
    )
    parser.add_argument(
        "--deblur",
        default=None,
        help="a deblurring purifier (residual weights) applied before the gate to images that read smooth; "
        "default: none",
    )
    parser.add_argument(
        "--deblur-sharpness-range",
        type=number_pair,
        default=(0.04, 0.1),
        help="LOW,HIGH: images of a sharpness (recondefense.levels.sharpness) up to LOW get all of --deblur's "
        "correction, falling to none at HIGH",
    )
    parser.add_argument(
        "--brightness-veto",
        type=float,
        default=0.0,
        help="the gate opens only where the image with its black point restored also reads above this, in "
        "[0, 0.5] (0: one reading)",
    )
    parser.add_argument(
        "--held-out-corruptions",
        default="impulse_noise,motion_blur,frost,pixelate",
        help="the corruptions no part was trained on, named in the model card",
    )
    args = parser.parse_args(argv)
    try:
        if corruption_spec(args.corruptions) is None:
            parser.error(f"--corruptions {args.corruptions!r}: expected corruption[:names][@severities]")
    except ValueError as err:
        parser.error(str(err))
    unknown = [name for name in args.held_out_corruptions.split(",") if name and name not in CORRUPTIONS]
    if unknown:
        parser.error(f"--held-out-corruptions: unknown {unknown}; expected some of {','.join(CORRUPTIONS)}")
    thresholds = args.bypass_below if isinstance(args.bypass_below, tuple) else (args.bypass_below,)
    bad = PurifierConfig(
        contrast_floor=args.contrast_floor,
        contrast_target=args.contrast_target,
        strong_above=args.strong_above,
        black_point_floor=args.black_point_floor,
        corruption_strength=args.corruption_strength,
        corruption_noise_range=args.corruption_noise_range,
        deblur_sharpness_range=args.deblur_sharpness_range,
        brightness_veto=args.brightness_veto,
    ).problem()
    if bad is not None:
        parser.error(f"--{bad[0].replace('_', '-')} {getattr(args, bad[0])}: expected {bad[1]}")
    if not all(0 <= b <= 0.5 for b in thresholds) or args.val_limit < 1:
        parser.error(f"--bypass-below {args.bypass_below}, --val-limit {args.val_limit}: expected [0, 0.5] and >= 1")
    parts = [ReconstructiveDefense.from_pretrained(name) for name in (args.gate, args.adversarial, args.corruption)]
    strong = None if args.strong is None else ReconstructiveDefense.from_pretrained(args.strong)
    deblur = None if args.deblur is None else ReconstructiveDefense.from_pretrained(args.deblur)
    shared = {
        "noise_route_above": args.noise_route_above,
        "contrast_floor": args.contrast_floor,
        "contrast_target": args.contrast_target,
        "black_point_floor": args.black_point_floor,
        "gate_open_at": args.gate_open_at,
        "strong": strong,
        "strong_above": args.strong_above,
        "corruption_strength": args.corruption_strength,
        "corruption_noise_range": args.corruption_noise_range,
        "deblur": deblur,
        "deblur_sharpness_range": args.deblur_sharpness_range,
        "brightness_veto": args.brightness_veto,
    }
    validation = measure(
        compose(*parts, **shared),
        args.data,
        args.classifier,
        args.val_limit,
        args.corruptions,
    )
    gate, adversarial, corruption = parts
    meta = {
        **gate.meta,  # the data, classifiers and triplet sources the routes were learnt on
        "guidance": _guidance(adversarial, corruption),
        "attack": _attack(gate, adversarial),
        "composed_from": {
            "gate": args.gate,
            "inner": args.adversarial,
            "corruption": args.corruption,
            **({} if strong is None else {"strong": args.strong}),
            **({} if deblur is None else {"deblur": args.deblur}),
        },
        "command": "python scripts/compose_routed.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "validation": validation,
        "compute": f"composition and validation ({args.val_limit} val images, PGD against {args.classifier}, and "
        f"{args.corruptions}) on a CPU",
        "gate_command": gate.meta.get("command"),
        "inner_command": adversarial.meta.get("command"),
        "corruption_command": corruption.meta.get("command"),
        **({} if strong is None else {"strong_command": strong.meta.get("command")}),
        **({} if deblur is None else {"deblur_command": deblur.meta.get("command")}),
        "held_out_corruptions": [name for name in args.held_out_corruptions.split(",") if name],
    }
    if args.noise_route_above is not None:
        meta["routes"] = (
            f"route 2's logit is twice route 1's less {args.noise_route_above:g}: images whose adversarial-route "
            f"logit exceeds {args.noise_route_above:g} (noise) go to the corruption purifier"
        )
    # three runs made it: their commands are kept above, the settings of one run are dropped
    for key in ("train_config", "epochs_trained", "clean_weight", "clean_fraction", "adaptive", "validation_note"):
        meta.pop(key, None)
    note = small_validation_note(int(validation["n"]))
    if note:
        meta["validation_note"] = note
    composed = compose(*parts, meta=meta, bypass_below=args.bypass_below, pass_smoothing=args.pass_smoothing, **shared)
    composed.save_pretrained(args.out)
    print(validation)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
