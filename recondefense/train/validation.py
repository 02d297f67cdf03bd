"""Per-epoch validation: clean and attacked accuracy with and without the AE, and PSNR of AE(x~) vs x."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ..data import collate_skipping
from ..metrics import psnr, wilson_interval
from ..routing import ROUTES
from .attack_specs import attack_parts
from .config import TrainConfig
from .network import AnySize
from .triplets import TripletMaker, check_labels, single_source, step_seed

#: Below this many validation images the validation numbers are noise: the run warns and the model card says so.
MIN_VALIDATION_IMAGES = 100


def small_validation_note(n: int) -> str | None:
    """Why validation on ``n`` images says nothing, or None from :data:`MIN_VALIDATION_IMAGES` images up."""
    if n >= MIN_VALIDATION_IMAGES:
        return None
    low, high = wilson_interval(n // 2, n) if n > 0 else (0.0, 1.0)
    return (
        f"validation on only {n} image(s): its accuracies are not meaningful (one measured on {n} image(s) is "
        f"uncertain by about ±{(high - low) / 2:.2f} at 95%); validate on at least {MIN_VALIDATION_IMAGES} (more "
        "images, val_data= in fit, or a larger --val-limit)"
    )


@torch.no_grad()
def _predict(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return model(x).argmax(1)


def _validation_attack(
    i: int, x: torch.Tensor, y: torch.Tensor, classifier: nn.Module, maker: TripletMaker, config: TrainConfig
) -> tuple[torch.Tensor, int, int]:
    """Validation batch ``i`` attacked by the first triplet source (against the first classifier alone), and the
    undefended clean and attacked correct counts; seeded by the batch, independent of the AE."""
    with torch.no_grad():
        clean_logits = classifier(x)
    check_labels(y.cpu(), clean_logits.shape[-1])
    torch.manual_seed(step_seed(config.seed, -2, i))
    parts = attack_parts(config.attack)
    first = parts[0]  # validation measures the first triplet source
    if first in ("pgd", "mix"):
        x_adv = maker.pgd[0](x, y)
    elif first == "fgsm":
        x_adv = maker.fgsm[0](x, y)
    else:  # noise or corruptions: a seeded draw of the same source
        x_adv = maker(x, y) if len(parts) == 1 else single_source(maker, first)(x, y)
    clean_correct = (clean_logits.argmax(1) == y).sum().item()
    attacked_correct = (_predict(classifier, x_adv) == y).sum().item()
    return x_adv, clean_correct, attacked_correct


def validate(
    ae: nn.Module,
    classifier: nn.Module,
    maker: TripletMaker,
    dataset: Dataset,
    config: TrainConfig,
    device: torch.device,
) -> dict[str, float]:
    """Clean and attacked accuracy with and without the AE, and PSNR of AE(x~) vs x, on ``dataset``.

    A gated purifier (one with ``gate_value``) also reports how far its gate opens on clean and attacked images
    (``gate_clean``, ``gate_attacked``: mean gate in [0, 1]) and the accuracy of the purifier behind it alone
    (``inner_clean_acc``, ``inner_attacked_acc``), which bounds what the gate can recover. Images of any height
    and width: the network sees them padded to its stride and cropped back, as at inference. A routed purifier (one
    with ``routes``) also reports its mean route probabilities, ``route_<route>_clean`` and ``route_<route>_attacked``
    for each of :data:`~recondefense.routing.ROUTES` (``gate_*``: the share sent to its purifiers, ``1 - p0``).
    """
    was_training = ae.training
    ae.eval()
    # the training batch size bounds the memory of the validation attacks too (224 px PGD: ~80 MB per image)
    loader = DataLoader(
        dataset,
        batch_size=config.batch_size,
        shuffle=False,
        collate_fn=collate_skipping,
        num_workers=config.num_workers,
    )
    totals = {
        "n": 0,
        "clean_acc_undefended": 0.0,
        "attacked_acc_undefended": 0.0,
        "clean_acc": 0.0,
        "attacked_acc": 0.0,
        "psnr": 0.0,
    }
    gated = hasattr(ae, "gate_value")
    purifier, inner = AnySize(ae), AnySize(ae.bottleneck) if gated else None
    if gated:
        totals |= {"gate_clean": 0.0, "gate_attacked": 0.0, "inner_clean_acc": 0.0, "inner_attacked_acc": 0.0}
    routed = hasattr(ae, "routes")
    if routed:
        totals |= {f"route_{route}_{kind}": 0.0 for kind in ("clean", "attacked") for route in ROUTES}
    for i, (x, y, _) in enumerate(loader):
        if config.val_limit is not None:
            if totals["n"] >= config.val_limit:
                break
            x, y = x[: config.val_limit - totals["n"]], y[: config.val_limit - totals["n"]]
        x, y = x.to(device), y.to(device)
        if i not in maker.validation_attacks:  # the attack ignores the AE: made once, reused every epoch
            maker.validation_attacks[i] = _validation_attack(i, x, y, classifier, maker, config)
        x_adv, clean_correct, attacked_correct = maker.validation_attacks[i]
        with torch.no_grad():
            recon_clean, recon_adv = purifier(x).clamp(0, 1), purifier(x_adv).clamp(0, 1)
        totals["n"] += len(y)
        totals["clean_acc_undefended"] += clean_correct
        totals["attacked_acc_undefended"] += attacked_correct
        totals["clean_acc"] += (_predict(classifier, recon_clean) == y).sum().item()
        totals["attacked_acc"] += (_predict(classifier, recon_adv) == y).sum().item()
        totals["psnr"] += psnr(recon_adv, x).sum().item()
        if gated:
            with torch.no_grad():
                totals["gate_clean"] += ae.gate_value(x).sum().item()
                totals["gate_attacked"] += ae.gate_value(x_adv).sum().item()
                inner_clean, inner_adv = inner(x).clamp(0, 1), inner(x_adv).clamp(0, 1)
            totals["inner_clean_acc"] += (_predict(classifier, inner_clean) == y).sum().item()
            totals["inner_attacked_acc"] += (_predict(classifier, inner_adv) == y).sum().item()
        for kind, images in (("clean", x), ("attacked", x_adv)) if routed else ():
            with torch.no_grad():
                shares = ae.routes(images).sum(0).tolist()
            for route, share in zip(ROUTES, shares):
                totals[f"route_{route}_{kind}"] += share
    ae.train(was_training)
    n = max(totals.pop("n"), 1)
    return {k: v / n for k, v in totals.items()} | {"n": n}
