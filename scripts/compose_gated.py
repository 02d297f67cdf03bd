"""Put another trained purifier behind a trained gate: the gate of one gated weights folder, the purifier of another.

    python scripts/compose_gated.py --gate imagenet-efficientnet_lite0_lite2-gated-pgd \
        --inner imagenet-efficientnet_lite0_lite2-pgd --out weights/imagenet-efficientnet_lite0_lite2-gated2-pgd \
        --data photos:2000 --classifier imagenet-efficientnet_lite0 --val-limit 200

Why this is the same as training the gate again: a gate trained with the detection loss alone (``recondefense
train --arch gated --freeze bottleneck --gate-weight 1 --ce-weight 0 --visual-weight 0``) never looks at the
purifier behind it (the loss is a binary cross-entropy on the gate's logits for attacked and clean images), so
rerunning that command with ``--init-from <inner>`` trains the very same gate. This script skips the rerun, and
measures the composition on the validation crops (PGD against the classifier alone) for the model card.
"""

from __future__ import annotations

import argparse
import sys

import torch

from recondefense import ReconstructiveDefense
from recondefense.classifiers import load_classifier
from recondefense.data import load_dataset
from recondefense.train.config import TrainConfig
from recondefense.train.triplets import TripletMaker
from recondefense.train.validation import validate


def compose(
    gate: ReconstructiveDefense,
    inner: ReconstructiveDefense,
    meta: dict | None = None,
    bypass_below: float = 0.0,
    pass_smoothing: float = 0.0,
    gate_open_at: float | None = None,
    gate_sharpness: float = 1.0,
) -> ReconstructiveDefense:
    """A gated defense with ``gate``'s gate and ``inner``'s purifier (an ``inner.arch`` network of its size);
    ``meta`` goes into its config.json; ``bypass_below``: images whose gate is below it skip the purifier at
    inference; ``pass_smoothing``: what the pass route gives (both: :class:`~recondefense.purifier_config.PurifierConfig`);
    ``gate_open_at``, ``gate_sharpness``: the gate recalibrated to open at that old logit
    (:meth:`~recondefense.gate.PerturbationGate.recalibrate`; None: as trained)."""
    if gate.arch != "gated":
        raise ValueError(f"--gate must name gated weights, got arch {gate.arch!r}")
    hyper = dict(gate.hyperparameters)
    hyper.update({k: inner.hyperparameters[k] for k in ("width", "depth", "skip", "widths")}, inner=inner.arch)
    hyper.update(bypass_below=bypass_below, pass_smoothing=pass_smoothing)
    defense = ReconstructiveDefense(**hyper, meta=meta)
    gate_state = {k: v for k, v in gate.autoencoder.state_dict().items() if k.startswith("gate.")}
    missing = defense.autoencoder.load_state_dict(gate_state, strict=False).missing_keys
    if any(k.startswith("gate.") for k in missing):
        raise ValueError(f"the gate weights do not fit: missing {missing}")
    defense.autoencoder.bottleneck.load_state_dict(inner.autoencoder.state_dict())
    if gate_open_at is not None:
        defense.autoencoder.gate.recalibrate(gate_open_at, gate_sharpness)
    return defense


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gate", required=True, help="gated weights whose gate is kept (name, hub id or folder)")
    parser.add_argument("--inner", required=True, help="recon or residual weights put behind the gate")
    parser.add_argument("--out", required=True, help="folder for the composed weights")
    parser.add_argument("--data", default="photos:2000", help="validation data spec (its val split)")
    parser.add_argument("--classifier", default="imagenet-efficientnet_lite0", help="validated classifier")
    parser.add_argument("--val-limit", type=int, default=200)
    parser.add_argument(
        "--bypass-below", type=float, default=0.0, help="skip the purifier on images whose gate is below this"
    )
    parser.add_argument(
        "--pass-smoothing", type=float, default=0.0, help="share of a 3 x 3 blur the pass route gives (0: none)"
    )
    parser.add_argument(
        "--gate-open-at",
        type=float,
        default=None,
        help="recalibrate the gate to open (sigmoid 0.5) at this logit of the trained gate (default: as trained); "
        "choose it on validation (scripts/gate_logits.py)",
    )
    parser.add_argument(
        "--gate-sharpness", type=float, default=1.0, help="with --gate-open-at: the new logit's scale (1: as trained)"
    )
    args = parser.parse_args(argv)
    if not args.gate_sharpness > 0:
        parser.error(f"--gate-sharpness {args.gate_sharpness}: expected a positive number")
    gate, inner = (ReconstructiveDefense.from_pretrained(name) for name in (args.gate, args.inner))
    defense = compose(
        gate,
        inner,
        bypass_below=args.bypass_below,
        pass_smoothing=args.pass_smoothing,
        gate_open_at=args.gate_open_at,
        gate_sharpness=args.gate_sharpness,
    )
    config = TrainConfig(
        data=args.data, classifier=args.classifier, val_limit=args.val_limit, batch_size=16, progress=False
    )
    classifier = load_classifier(args.classifier).eval()
    val_set = load_dataset(args.data, "val", classifier=classifier)
    maker = TripletMaker(config, [classifier])
    validation = validate(defense.autoencoder, classifier, maker, val_set, config, torch.device("cpu"))
    meta = {
        **inner.meta,
        "composed_from": {"gate": args.gate, "inner": args.inner},
        "command": "python scripts/compose_gated.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "validation": validation,
        "compute": f"composition and validation ({args.val_limit} val crops, PGD against {args.classifier}) on a CPU",
        "gate_command": gate.meta.get("command"),
        "inner_command": inner.meta.get("command"),
    }
    meta.pop("train_config", None)  # two runs made it: their commands are kept above
    meta.pop("epochs_trained", None)
    defense.meta = meta
    defense.save_pretrained(args.out)
    print(validation)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
