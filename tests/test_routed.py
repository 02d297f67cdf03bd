"""The routed purifier (issue 25): routes at init, the inference bypass, its config, the route loss and its labels,
training its gate alone, and composing it from trained parts (CPU, seconds)."""

from __future__ import annotations

import copy
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from recondefense import ReconstructiveDefense
from recondefense.purifier_config import PurifierConfig
from recondefense.purifiers import GatedPurifier, ResidualPurifier, RoutedPurifier
from recondefense.routing import ROUTES

pytestmark = pytest.mark.usefixtures("one_thread")

REPO = Path(__file__).resolve().parents[1]

SMALL = {"width": 4, "depth": 2, "detail_width": 4, "detail_depth": 1, "corruption_width": 4, "corruption_depth": 1}


class FixedLogits(nn.Module):
    """A gate that gives image ``i`` (the one whose top-left red pixel is ``i / 10``) row ``i`` of ``logits``."""

    def __init__(self, logits: list[list[float]]) -> None:
        super().__init__()
        self.register_buffer("logits", torch.tensor(logits))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits[(x[:, 0, 0, 0] * 10).round().long()]


def test_routed_purifier_starts_near_the_identity_with_route_0_dominant():
    torch.manual_seed(0)
    net = RoutedPurifier(**SMALL).eval()
    x = torch.rand(3, 3, 16, 24)
    routes = net.routes(x)
    assert routes.shape == (3, len(ROUTES)) and torch.allclose(routes.sum(1), torch.ones(3))
    assert (routes[:, 0] > 0.96).all() and torch.allclose(routes[:, 1], routes[:, 2])
    assert net(x).shape == x.shape and (net(x) - x).abs().max() <= 0.02  # R is the identity, A weighs 0.018
    assert isinstance(net.corruption, ResidualPurifier) and net.stride == net.bottleneck.stride == 4
    torch.testing.assert_close(net.gate_value(x), 1 - routes[:, 0])
    defense = ReconstructiveDefense(arch="routed", **SMALL)
    odd = torch.rand(2, 3, 13, 21)  # padded to the stride and cropped back
    assert defense(odd).shape == odd.shape and defense.gate(odd).shape == (2,)
    with torch.no_grad():  # each route fully open: the image, A's output, R's output
        net.corruption.correction.out.bias.fill_(0.1)
        for k, expected in enumerate([x, net.bottleneck(x).clamp(0, 1), (x + 0.1).clamp(0, 1)]):
            net.gate[-1].bias.copy_(torch.tensor([-60.0, -60.0]) + 120 * (torch.arange(2) == k - 1))
            torch.testing.assert_close(net(x), expected, atol=1e-6, rtol=0)


def test_routed_bypass_returns_shut_images_exactly_and_runs_each_expert_on_its_flagged_images():
    torch.manual_seed(0)
    dense = RoutedPurifier(**SMALL).eval()
    with torch.no_grad():
        dense.corruption.correction.out.bias.fill_(0.05)  # R does something
    # image 0: shut; 1: A; 2: R; 3: a third each (both experts run); 4: A at 0.02 < 0.05, skipped
    dense.gate = FixedLogits([[-30.0, -30.0], [30.0, -30.0], [-30.0, 30.0], [0.0, 0.0], [-3.9, -30.0]])
    bypassed = copy.deepcopy(dense)
    bypassed.bypass_below = 0.05
    x = torch.rand(5, 3, 16, 16)
    x[:, 0, 0, 0] = torch.arange(5) / 10
    calls: dict[str, list[int]] = {"bottleneck": [], "corruption": []}
    for name in calls:
        getattr(bypassed, name).register_forward_hook(lambda m, args, out, name=name: calls[name].append(len(args[0])))
    with torch.no_grad():
        out, reference = bypassed(x), dense(x)
    assert calls == {"bottleneck": [2], "corruption": [2]}  # images 1, 3 and 2, 3
    assert torch.equal(out[0], x[0]) and torch.equal(out[4], x[4])  # no expert ran: exactly the input
    assert (out - reference).abs().max() <= 0.05  # each pixel within bypass_below of the dense blend
    torch.testing.assert_close(out[1:4], reference[1:4])
    with torch.no_grad():
        bypassed(x[[0, 4]])
    assert calls == {"bottleneck": [2], "corruption": [2]}  # an all-shut batch runs no expert
    bypassed.train()
    with torch.no_grad():
        torch.testing.assert_close(bypassed(x), dense.train()(x))  # training blends every image


def test_one_bypass_threshold_per_expert_keeps_the_adversarial_purifier_dense():
    """``bypass_below=(0, 0.05)``: A (route 1) runs on every image, R (route 2) only where its route holds 0.05."""
    torch.manual_seed(0)
    net = RoutedPurifier(**SMALL, bypass_below=[0.0, 0.05]).eval()
    assert net.bypass_below == (0.0, 0.05)
    net.gate = FixedLogits([[-30.0, -30.0], [30.0, -30.0], [-30.0, 30.0]])
    calls: dict[str, list[int]] = {"bottleneck": [], "corruption": []}
    for name in calls:
        getattr(net, name).register_forward_hook(lambda m, args, out, name=name: calls[name].append(len(args[0])))
    x = torch.rand(3, 3, 16, 16)
    x[:, 0, 0, 0] = torch.arange(3) / 10
    with torch.no_grad():
        net(x)
    assert calls == {"bottleneck": [3], "corruption": [1]}
    config = PurifierConfig(arch="routed", bypass_below=(0.0, 0.05))
    assert config.validate().as_dict()["bypass_below"] == [0.0, 0.05]
    for bad in ([0.1, 0.2, 0.3], [0.0, 0.7], "0.05"):
        with pytest.raises(ValueError, match="bypass_below.*one per expert"):
            PurifierConfig(arch="routed", bypass_below=bad).validate()
    with pytest.raises(ValueError, match="bypass_below.*expected a number in .0, 0.5.$"):
        PurifierConfig(arch="gated", bypass_below=[0.0, 0.05]).validate()
    with pytest.raises(ValueError, match="one threshold per expert"):
        RoutedPurifier(**SMALL, bypass_below=[0.1, 0.1, 0.1])


def random_gated() -> GatedPurifier:
    """A gated purifier of the SMALL sizes whose gate has random weights (seeded), in eval mode."""
    torch.manual_seed(0)
    gated = GatedPurifier(**{k: v for k, v in SMALL.items() if not k.startswith("corruption")}).eval()
    with torch.no_grad():
        for p in gated.gate.parameters():
            p.normal_(0, 0.3)
    return gated


def test_route_above_sends_images_past_a_logit_threshold_to_route_2_and_leaves_the_rest_as_route_1_had_them():
    gated = random_gated()
    routed = RoutedPurifier(**SMALL).eval()
    routed.load_gate(gated.gate.state_dict())
    x = torch.rand(6, 3, 16, 16)
    logit = gated.gate_logit(x).detach()
    ordered = logit.sort().values
    threshold = float(ordered[2] + ordered[3]) / 2  # three images above, three below
    routed.route_above(threshold)
    logits = routed.route_logits(x)
    above = logit > threshold
    assert above.sum() == 3
    assert (logits[above, 2] > logits[above, 1]).all() and (logits[~above, 2] < logits[~above, 1]).all()
    torch.testing.assert_close(routed.gate(x)[:, 1], 2 * logit - threshold)
    routed.route_above(threshold + 1000)  # far above every image: route 2 shut, route 1 exactly the gated gate
    torch.testing.assert_close(routed.gate_value(x), gated.gate_value(x), atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="two different routes"):
        routed.route_above(1.0, source=2, target=2)


def test_a_gated_gate_fills_route_1_and_opens_as_it_did():
    gated = random_gated()
    routed = RoutedPurifier(**SMALL).eval()
    routed.load_gate(gated.gate.state_dict())
    x = torch.rand(4, 3, 16, 16)
    logits = routed.gate(x)
    torch.testing.assert_close(logits[:, 0], gated.gate_logit(x))
    assert torch.equal(logits[:, 1], torch.full((4,), -4.0))
    alone = torch.softmax(routed.route_logits(x)[:, :2], dim=1)[:, 1]  # route 1 against route 0
    torch.testing.assert_close(alone, gated.gate_value(x))
    with pytest.raises(ValueError, match="do not fit"):
        routed.load_gate(GatedPurifier(width=4, depth=2, detail_width=8, detail_depth=1).gate.state_dict())


def test_a_gated_gate_shared_between_the_routes_keeps_route_0_and_splits_the_rest_evenly():
    """Training a routed gate from a gated one starts with both routes copying its logit (less log 2): the pass
    route keeps its probability, and a corrupted image the old gate opened on in the hundreds costs log 2 in the
    route loss, not hundreds (the collapse of the first routed run)."""
    gated = random_gated()
    routed = RoutedPurifier(**SMALL).eval()
    routed.load_gate(gated.gate.state_dict(), share_opening=True)
    x = torch.rand(4, 3, 16, 16)
    with torch.no_grad():
        routes = routed.routes(x)
        torch.testing.assert_close(1 - routes[:, 0], gated.gate_value(x))
        torch.testing.assert_close(routes[:, 1], routes[:, 2])
        gated.gate[-1].bias += 50 - gated.gate_logit(x).min()  # wide open, as the shipped gate is on noise
        shut = RoutedPurifier(**SMALL).eval()
        shut.load_gate(gated.gate.state_dict())
        routed.load_gate(gated.gate.state_dict(), share_opening=True)
        to_corruption = torch.full((4,), 2)
        shared_loss = F.cross_entropy(routed.route_logits(x), to_corruption)
        shut_loss = F.cross_entropy(shut.route_logits(x), to_corruption)
    assert shared_loss.item() == pytest.approx(math.log(2), abs=1e-3) and shut_loss > 40


def test_training_a_routed_gate_from_a_gated_one_starts_with_the_opening_shared(tmp_path):
    from recondefense.train import TrainConfig
    from recondefense.train.network import build_network

    gated = ReconstructiveDefense(arch="gated", **{k: v for k, v in SMALL.items() if not k.startswith("corruption")})
    config = TrainConfig(arch="routed", **{k: v for k, v in SMALL.items() if k != "bypass_below"})
    net = build_network(config, 3, gated)
    last = net.gate[-1]
    torch.testing.assert_close(last.weight[0], last.weight[1])
    torch.testing.assert_close(last.bias[0], last.bias[1])
    torch.testing.assert_close(last.bias[0] + math.log(2), gated.autoencoder.gate[-1].bias[0])


def test_the_gate_refactor_computes_the_gate_of_the_shipped_gated_weights_as_before():
    """The gate moved to recondefense.gate.PerturbationGate: the same layers, names and arithmetic, so the
    shipped gated weights load unchanged and give the same gate, bit for bit."""
    defense = ReconstructiveDefense.from_pretrained("imagenet-efficientnet_lite0_lite2-gated-objects2-pgd")
    net = defense.autoencoder
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    laplacian = torch.tensor([[0.0, -1.0, 0.0], [-1.0, 4.0, -1.0], [0.0, -1.0, 0.0]]).expand(3, 1, 3, 3)
    residual = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), laplacian, groups=3)
    before = torch.cat([x, 30 * residual], dim=1)
    for layer in net.gate:
        before = layer(before)
    with torch.no_grad():
        assert torch.equal(net.gate_logit(x), before.flatten())
        gate = net.gate_value(x).view(-1, 1, 1, 1)
        assert torch.equal(net(x), (x + gate * (net.bottleneck(x) - x)).clamp(0, 1))
    assert not any("corruption" in k for k in defense.state_dict())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"corruption_width": 0}, r"corruption_width=0: expected an integer in \[1, 256\]"),
        ({"corruption_width": True}, "corruption_width=True: expected an integer"),
        ({"corruption_depth": 7}, r"corruption_depth=7: expected an integer in \[1, 6\]"),
        ({"corruption_depth": 2.0}, "corruption_depth=2.0: expected an integer"),
        ({"arch": "routed", "inner": "gated"}, "inner='gated': expected one of"),
    ],
)
def test_routed_config_fields_are_checked_before_anything_is_built(change, message):
    with pytest.raises(ValueError, match=message):
        PurifierConfig(**change).validate()


def test_a_routed_config_json_round_trips_and_a_bad_one_is_refused(tmp_path):
    from recondefense.errors import ConfigError

    torch.manual_seed(0)
    defense = ReconstructiveDefense(arch="routed", **SMALL, bypass_below=0.05)
    defense.save_pretrained(tmp_path / "ok")
    config = json.loads((tmp_path / "ok" / "config.json").read_text())
    assert (config["corruption_width"], config["corruption_depth"], config["bypass_below"]) == (4, 1, 0.05)
    loaded = ReconstructiveDefense.from_pretrained(tmp_path / "ok")
    assert loaded.purifier_config == defense.purifier_config and type(loaded.autoencoder) is RoutedPurifier
    x = torch.rand(2, 3, 16, 16)
    assert torch.equal(loaded(x), defense(x))
    for bad in ({"corruption_width": "4"}, {"corruption_depth": 99}, {"corruption_width": 10**9}):
        (tmp_path / "bad").mkdir(exist_ok=True)
        (tmp_path / "bad" / "config.json").write_text(json.dumps(config | bad))
        (tmp_path / "bad" / "model.safetensors").write_bytes((tmp_path / "ok" / "model.safetensors").read_bytes())
        with pytest.raises(ConfigError, match=next(iter(bad))):
            ReconstructiveDefense.from_pretrained(tmp_path / "bad")


@pytest.mark.parametrize("arch", ["recon", "gated"])
def test_config_json_files_written_before_the_corruption_fields_load_unchanged(tmp_path, arch):
    torch.manual_seed(0)
    defense = ReconstructiveDefense(arch=arch, width=4, depth=2, detail_width=4, detail_depth=1)
    with torch.no_grad():
        for p in defense.parameters():
            p.add_(0.01 * torch.randn_like(p))
    defense.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    for key in ("corruption_width", "corruption_depth"):  # what every folder written before them holds
        config.pop(key)
    (tmp_path / "config.json").write_text(json.dumps(config))
    loaded = ReconstructiveDefense.from_pretrained(tmp_path)
    assert loaded.purifier_config == defense.purifier_config and loaded.arch == arch
    x = torch.rand(2, 3, 16, 16)
    assert torch.equal(loaded(x), defense(x))


# ------------------------------------------------------------------------------------------ the route loss


def test_each_triplet_source_teaches_its_route():
    from tiny_models import tiny_classifier

    from recondefense.train.config import TrainConfig
    from recondefense.train.triplets import TripletMaker, attack_groups, source_route

    assert [source_route(k) for k in ("pgd", "fgsm", "mix")] == [ROUTES.index("adversarial")] * 3
    assert source_route("corruption:fog@1-5") == source_route("gaussian:0.25") == ROUTES.index("corruption") == 2
    classifier = tiny_classifier().eval()
    config = TrainConfig(attack="pgd+corruption:fog@3", eps=0.03, step_size=0.01, steps=1)
    maker = TripletMaker(config, [classifier, classifier])
    x, y = torch.rand(8, 3, 16, 16), torch.randint(0, 2, (8,))
    groups = [(0, torch.arange(0, 8, 2)), (1, torch.arange(1, 8, 2))]
    seen = set()
    for seed in range(6):  # each classifier's group draws its source
        torch.manual_seed(seed)
        x_adv, routes = attack_groups(maker, x, y, groups, relabel=False)
        for _, rows in groups:
            assert len(set(routes[rows].tolist())) == 1
            corrupted = routes[rows][0] == 2
            seen.add(int(routes[rows][0]))
            # fog changes the image far beyond the PGD budget; PGD stays within it
            assert ((x_adv[rows] - x[rows]).abs().max() > 0.031) == bool(corrupted)
    assert seen == {1, 2}


def test_the_route_loss_sends_clean_images_to_route_0_and_each_source_to_its_route():
    from recondefense.train.config import TrainConfig
    from recondefense.train.network import train_loss

    torch.manual_seed(0)
    net = RoutedPurifier(**SMALL)
    with torch.no_grad():
        for p in net.gate.parameters():
            p.normal_(0, 0.3)
    config = TrainConfig(arch="routed", visual_weight=0.0, ce_weight=0.0, gate_weight=1.0)
    x, x_adv = torch.rand(4, 3, 16, 16), torch.rand(4, 3, 16, 16)
    routes = torch.tensor([1, 2, 0, 2])  # attacked, corrupted, left clean (--clean-fraction), corrupted
    loss = train_loss(config, net, net, [], [], x, torch.zeros(4, dtype=torch.long), x_adv, routes, False, False)[2]
    logits = torch.cat([net.route_logits(x_adv), net.route_logits(x)])
    expected = F.cross_entropy(logits, torch.tensor([1, 2, 0, 2, 0, 0, 0, 0]))
    torch.testing.assert_close(loss, expected)
    with pytest.raises(ValueError, match="source of every x~"):
        train_loss(
            config, net, net, [], [], x, torch.zeros(4, dtype=torch.long), x_adv, torch.full((4,), -1), False, False
        )
    gated = GatedPurifier(width=4, depth=2, detail_width=4, detail_depth=1)  # binary: open on every perturbed one
    loss = train_loss(config, gated, gated, [], [], x, torch.zeros(4, dtype=torch.long), x_adv, routes, False, False)[2]
    logits = torch.cat([gated.gate_logit(x_adv), gated.gate_logit(x)])
    torch.testing.assert_close(
        loss, F.binary_cross_entropy_with_logits(logits, torch.tensor([1.0, 1, 0, 1, 0, 0, 0, 0]))
    )


def test_the_routed_gate_trains_alone_on_cached_mixed_triplets(tmp_path):
    import numpy as np
    from test_train import _config, _write_images

    from recondefense.train import train
    from recondefense.train.triplets import CACHED_ROUTES

    data = _write_images(tmp_path / "data")
    start = train(_config(data, tmp_path / "recon", epochs=1, warmup_epochs=1))
    common = {"arch": "routed", "detail_width": 4, "detail_depth": 1, "corruption_width": 4, "corruption_depth": 1}
    out = tmp_path / "gate"
    final = train(
        _config(
            data,
            out,
            **common,
            init_from=str(start),
            freeze="bottleneck,corruption",
            attack="pgd+corruption:fog,contrast@3-5",
            triplets="cached",
            warmup_epochs=0,
            epochs=2,
            visual_weight=0.0,
            ce_weight=0.0,
            gate_weight=1.0,
            gate_negatives=0.5,
            gate_negative_kinds="jpeg,brightness",
            lr=0.05,
        )
    )
    routes = np.load(out / CACHED_ROUTES)
    assert routes.shape == (16,) and set(routes.tolist()) <= {1, 2} and len(set(routes.tolist())) == 2
    before = ReconstructiveDefense.from_pretrained(start).autoencoder.state_dict()
    after = ReconstructiveDefense.from_pretrained(final)
    assert all(torch.equal(before[k], v) for k, v in after.autoencoder.bottleneck.state_dict().items())
    assert all(not v.any() for k, v in after.autoencoder.corruption.state_dict().items() if "out." in k)
    assert not torch.equal(after.autoencoder.gate[-1].bias, torch.tensor([-4.0, -4.0]))  # the gate learned
    validation = after.meta["validation"]
    assert {"route_pass_clean", "route_adversarial_attacked", "route_corruption_attacked"} <= set(validation)


def test_a_mixed_cache_built_from_a_pgd_cache_is_the_one_training_would_make(tmp_path):
    import numpy as np
    from test_scripts import load_script
    from test_train import _config, _write_images

    from recondefense.train import train
    from recondefense.train.triplets import CACHED_CLEAN, CACHED_LABELS, CACHED_ROUTES, CACHED_TRIPLETS

    data = _write_images(tmp_path / "data")
    spec = "corruption:fog,contrast,gaussian_noise@2-5"
    run = {"triplets": "cached", "epochs": 1, "warmup_epochs": 1, "stop_after_steps": 1, "seed": 3}
    train(_config(data, tmp_path / "pgd", attack="pgd", **run))
    train(_config(data, tmp_path / "direct", attack=f"pgd+{spec}", **run))
    routes = load_script("mix_triplet_cache").mix_cache(
        tmp_path / "pgd", tmp_path / "mixed", spec, batch_size=4, classifier_count=1, seed=3, progress=False
    )
    assert set(routes.tolist()) == {1, 2}  # both sources drawn
    for name in (CACHED_CLEAN, CACHED_LABELS, CACHED_ROUTES, CACHED_TRIPLETS):
        assert np.array_equal(np.load(tmp_path / "mixed" / name), np.load(tmp_path / "direct" / name)), name
    with pytest.raises(ValueError, match="one corruption spec"):
        load_script("mix_triplet_cache").mix_cache(tmp_path / "pgd", tmp_path / "x", "pgd", 4, 1)
    # --sources-from: the mixed cache's sources kept, its PGD rows copied, its corrupted rows corrupted anew
    sources = np.load(tmp_path / "direct" / CACHED_ROUTES)
    noise = load_script("mix_triplet_cache").mix_cache(
        tmp_path / "direct",
        tmp_path / "noise",
        "corruption:gaussian_noise@5",
        4,
        1,
        seed=3,
        progress=False,
        sources=sources,
    )
    assert np.array_equal(noise, sources)
    direct, renewed = (np.load(tmp_path / d / CACHED_TRIPLETS) for d in ("direct", "noise"))
    assert np.array_equal(renewed[sources == 1], direct[sources == 1])
    clean = np.load(tmp_path / "direct" / CACHED_CLEAN).astype(float)
    assert np.abs(renewed[sources == 2] - clean[sources == 2]).mean() > 40  # severity-5 noise, not fog or contrast


# ------------------------------------------------------------------------------------------ composition


def test_compose_routed_card_names_each_experts_guidance_and_the_purifiers_own_triplets():
    from test_scripts import load_script

    module = load_script("compose_routed")
    pgd, mix = "pgd (eps=0.01, step 0.004, 10 steps)", "mix (eps=0.01, step 0.004, 10 steps)"
    routed = ReconstructiveDefense(arch="routed", **SMALL)
    routed.meta = {
        "attack": pgd,
        "guidance": "kl (adversarial purifier), ce with clean-consistency weight 1.0 (corruption purifier)",
    }
    purifier, expert = ReconstructiveDefense(widths=[4, 8]), ReconstructiveDefense(arch="residual", width=4, depth=1)
    purifier.meta = {"attack": mix, "guidance": "kl"}
    expert.meta = {"guidance": "kl", "clean_weight": 0.5}
    # each expert's own part of a composed folder's line, not the whole line again
    assert module._guidance(purifier, routed) == (
        "kl (adversarial purifier), ce with clean-consistency weight 1.0 (corruption purifier)"
    )
    assert module._guidance(routed, expert) == (
        "kl (adversarial purifier), kl with clean-consistency weight 0.5 (corruption purifier)"
    )
    assert module._guidance(routed, routed) == routed.meta["guidance"]
    assert module._attack(routed, purifier) == f"{pgd} (the gate's routes); {mix} (the adversarial purifier)"
    assert module._attack(routed, routed) == pgd


def test_compose_routed_keeps_every_part_bit_exactly(tmp_path):
    from test_scripts import load_script

    module = load_script("compose_routed")
    torch.manual_seed(0)
    noisy = {}
    for name, defense in {
        "gated": ReconstructiveDefense(arch="gated", width=8, depth=2, detail_width=4, detail_depth=1),
        "routed": ReconstructiveDefense(arch="routed", **SMALL),
        "recon": ReconstructiveDefense(widths=[4, 8, 16]),
        "residual": ReconstructiveDefense(arch="residual", width=4, depth=1),
    }.items():
        with torch.no_grad():
            for p in defense.parameters():
                p.add_(0.05 * torch.randn_like(p))
        noisy[name] = defense
    for gate in ("gated", "routed"):
        composed = module.compose(noisy[gate], noisy["recon"], noisy["residual"], {"note": "kept"}, bypass_below=0.05)
        net, state = composed.autoencoder, composed.autoencoder.state_dict()
        assert composed.hyperparameters | {"arch": "routed", "widths": [4, 8, 16], "inner": "recon"} == (
            composed.hyperparameters
        )
        assert (composed.hyperparameters["corruption_width"], composed.hyperparameters["corruption_depth"]) == (4, 1)
        assert all(torch.equal(v, state["bottleneck." + k]) for k, v in noisy["recon"].autoencoder.state_dict().items())
        assert all(
            torch.equal(v, state["corruption." + k]) for k, v in noisy["residual"].autoencoder.state_dict().items()
        )
        trunk = {k: v for k, v in noisy[gate].autoencoder.state_dict().items() if k.startswith("gate.")}
        for k, v in trunk.items():
            assert torch.equal(v, state[k][: len(v)] if k.startswith(f"gate.{len(net.gate) - 1}.") else state[k])
    composed.save_pretrained(tmp_path / "composed")
    loaded = ReconstructiveDefense.from_pretrained(tmp_path / "composed")
    assert loaded.meta == {"note": "kept"} and loaded.autoencoder.bypass_below == (0.05, 0.05)
    x = torch.rand(2, 3, 16, 16)
    assert torch.equal(loaded(x), composed(x))
    again = module.compose(loaded, loaded, loaded)  # every part from a routed folder
    assert all(torch.equal(v, again.state_dict()[k]) for k, v in loaded.state_dict().items())
    gentle = module.compose(loaded, loaded, loaded, corruption_strength=0.5, corruption_noise_range=(0.05, 0.2))
    assert (gentle.autoencoder.corruption.strength, gentle.autoencoder.corruption.noise_range) == (0.5, (0.05, 0.2))
    assert loaded.autoencoder.corruption.strength == 1.0
    with pytest.raises(SystemExit):  # refused before anything is loaded
        module.main(["--gate", "x", "--adversarial", "x", "--corruption", "x", "--corruption-noise-range", "0.3,0.1"])
    with pytest.raises(ValueError, match="routed or gated"):
        module.compose(noisy["recon"], noisy["recon"], noisy["residual"])
    with pytest.raises(ValueError, match="--corruption: expected weights of arch residual or routed"):
        module.compose(noisy["gated"], noisy["recon"], noisy["recon"])


def test_compose_routed_gate_open_at_moves_every_route_logit_after_the_noise_route_is_placed():
    """--gate-open-at -2: route 1's logit on every image is 2 higher (a clean image's gate value goes from
    sigmoid(-4) to sigmoid(-2)), and route 2 still takes exactly the images above the noise threshold."""
    from test_scripts import load_script

    module = load_script("compose_routed")
    torch.manual_seed(0)
    gated = ReconstructiveDefense(arch="gated", width=8, depth=2, detail_width=4, detail_depth=1)
    with torch.no_grad():
        for p in gated.autoencoder.gate.parameters():
            p.normal_(0, 0.3)
    recon, residual = ReconstructiveDefense(width=8, depth=2), ReconstructiveDefense(arch="residual", width=4, depth=1)
    x = torch.rand(4, 3, 16, 16)
    plain = module.compose(gated, recon, residual, noise_route_above=5.0).autoencoder
    moved = module.compose(gated, recon, residual, noise_route_above=5.0, gate_open_at=-2.0).autoencoder
    with torch.no_grad():
        torch.testing.assert_close(moved.gate(x), plain.gate(x) + 2.0)
        wins = plain.gate(x)[:, 1] > plain.gate(x)[:, 0]
        assert torch.equal(moved.gate(x)[:, 1] > moved.gate(x)[:, 0], wins)


def test_recalibrating_the_gate_moves_where_it_opens_and_keeps_its_architecture():
    """recalibrate(open_at, sharpness): the new logit is sharpness * (old - open_at), so an image whose old logit
    was open_at now sits at sigmoid 0.5; bad numbers are refused before anything changes."""
    from recondefense.routing import PerturbationGate

    torch.manual_seed(0)
    gated = ReconstructiveDefense(arch="gated", width=8, depth=2, detail_width=4, detail_depth=1).autoencoder.eval()
    x = torch.rand(4, 3, 16, 16)
    with torch.no_grad():
        before = gated.gate_logit(x)
    keys = set(gated.state_dict())
    assert isinstance(gated.gate, PerturbationGate)
    gated.gate.recalibrate(open_at=float(before[0]), sharpness=10.0)
    with torch.no_grad():
        after = gated.gate_logit(x)
    torch.testing.assert_close(after, 10.0 * (before - before[0]), atol=1e-4, rtol=1e-5)
    assert float(gated.gate_value(x[:1])) == pytest.approx(0.5, abs=1e-4) and set(gated.state_dict()) == keys
    for bad in ({"open_at": float("nan")}, {"open_at": 0.0, "sharpness": 0.0}, {"open_at": 0.0, "sharpness": -1.0}):
        with pytest.raises(ValueError, match="expected finite numbers"):
            gated.gate.recalibrate(**bad)
    with torch.no_grad():
        torch.testing.assert_close(gated.gate_logit(x), after)  # a refused call changed nothing


def test_washed_out_images_are_stretched_back_before_the_gate_and_others_pass_exactly(tmp_path):
    """``contrast_floor``: an image whose contrast (RMS deviation from its channel means) is below the floor is
    stretched around those means to ``contrast_target``, no further than its own range allows (ImageNet-C's contrast
    corruption, which scales that deviation, is undone; a dim photo is not stretched); images above the floor, and
    every image with floor 0, are untouched."""
    from recondefense.corruptions import corrupt
    from recondefense.routing import MAX_CONTRAST_GAIN, contrast_gain, contrast_spread, restore_contrast

    torch.manual_seed(0)
    clean = 0.3 + 0.4 * torch.rand(4, 3, 32, 32)  # contrast about 0.115; stretched to 0.2, none clamped
    washed = corrupt(clean, "contrast", 4)  # deviation from the channel means times 0.1
    assert (contrast_spread(clean) > 0.1).all() and (contrast_spread(washed) < 0.02).all()
    restored = restore_contrast(washed, 0.08, 0.2)
    torch.testing.assert_close(contrast_spread(restored), torch.full((4,), 0.2), atol=2e-3, rtol=0)
    gain = 0.2 / contrast_spread(clean)  # the clean image at contrast 0.2, what the stretch gives back
    means = clean.mean(dim=(2, 3), keepdim=True)
    expected = (means + gain.view(-1, 1, 1, 1) * (clean - means)).clamp(0, 1)
    torch.testing.assert_close(restored, expected, atol=2e-3, rtol=0)
    assert torch.equal(restore_contrast(clean, 0.08, 0.2), clean)  # above the floor: exactly as it came
    assert restore_contrast(washed, 0.0, 0.2) is washed  # floor 0: off
    flat = torch.full((1, 3, 8, 8), 0.3)
    flat[..., 0, 0] += 0.001  # almost uniform: the gain stops at MAX_CONTRAST_GAIN
    stretched = restore_contrast(flat, 0.08, 0.2)
    assert (stretched - stretched.mean()).abs().max() <= 0.001 * MAX_CONTRAST_GAIN + 1e-5
    # the image's own range bounds the gain: a washed-out image whose 4 x 4 blocks spanned [0, 1] per channel is
    # given exactly its range back (target 1: as far as that range allows), a dim one that touches black stays dim
    blocks = torch.rand(2, 3, 8, 8)
    blocks[:, :, 0, 0], blocks[:, :, -1, -1] = 0.0, 1.0
    full_range = F.interpolate(blocks, scale_factor=4, mode="nearest")
    torch.testing.assert_close(restore_contrast(corrupt(full_range, "contrast", 3), 0.08, 1.0), full_range)
    torch.testing.assert_close(contrast_gain(corrupt(full_range, "contrast", 3), 0.08, 1.0), torch.full((2,), 5.0))
    dim = 0.2 * full_range  # contrast about 0.06, below the floor
    assert (contrast_spread(dim) < 0.08).all() and torch.equal(contrast_gain(dim, 0.08, 0.2), torch.ones(2))
    assert torch.equal(restore_contrast(dim, 0.08, 0.2), dim)
    # in a routed (and gated) purifier the stretch comes first: the gate and the experts see the restored image
    for arch in ("routed", "gated"):
        defense = ReconstructiveDefense(arch=arch, **SMALL, contrast_floor=0.08, contrast_target=0.2)
        plain = ReconstructiveDefense(arch=arch, **SMALL)
        plain.load_state_dict(defense.state_dict())
        torch.testing.assert_close(defense(washed), plain(restored))
        assert torch.equal(defense(clean), plain(clean))
    defense.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert (config["contrast_floor"], config["contrast_target"]) == (0.08, 0.2)
    loaded = ReconstructiveDefense.from_pretrained(tmp_path)
    assert loaded.autoencoder.contrast_floor == 0.08 and torch.equal(loaded(washed), defense(washed))
    assert PurifierConfig(arch="routed").contrast_floor == 0.0  # config.json files without the key: untouched
    with pytest.raises(ValueError, match=r"contrast_floor=1.5: expected a number in \[0, 1\]"):
        PurifierConfig(arch="routed", contrast_floor=1.5).validate()
    with pytest.raises(ValueError, match=r"contrast_target=0: expected a number in \(0, 1\]"):
        PurifierConfig(arch="routed", contrast_target=0).validate()  # a target of 0 would flatten every stretched image


def run_make(*args: str, rules: str | None = None) -> str:
    """What ``make -s ARGS`` prints in the repository (``rules``: a makefile read after the repo's, from stdin);
    skips the test on a machine without make."""
    if shutil.which("make") is None:
        pytest.skip("no make on this machine")
    extra = ["-f", "Makefile", "-f", "-"] if rules is not None else []
    command = ["make", "-s", *extra, *args]
    return subprocess.run(command, input=rules, capture_output=True, text=True, cwd=REPO, check=True).stdout


def test_the_makefile_composes_gpu_purifiers_with_the_options_that_composed_the_default():
    """``make imagenet-gpu-candidates`` puts a new purifier behind DEFAULT_COMPOSE: the options of the default's own
    ``compose_routed.py`` command (its card's "Trained by"), so a GPU candidate differs from it in the purifier alone
    (as the strong purifier, beside the default's small one, DEFAULT_ADVERSARIAL, from STRONG_ABOVE)."""
    from recondefense.defense import DEFAULT_IMAGENET_WEIGHTS

    rule = "print-default-compose:\n\t@echo $(DEFAULT_COMPOSE) --adversarial $(DEFAULT_ADVERSARIAL) --strong-above $(STRONG_ABOVE)\n"
    options = run_make("print-default-compose", rules=rule).split()
    card = (REPO / "weights" / DEFAULT_IMAGENET_WEIGHTS / "README.md").read_text()
    trained_by = next(line for line in card.splitlines() if line.startswith("- Trained by:")).split()
    assert "--gate-open-at" in options and "--strong" not in options  # --strong: the GPU purifier
    pairs = list(zip(options[::2], options[1::2]))
    assert pairs and all((flag, value) in zip(trained_by, trained_by[1:]) for flag, value in pairs), (pairs, trained_by)


@pytest.mark.parametrize(
    "target, part, variable",
    [("imagenet-strong-candidate", "strong", "STRONG"), ("imagenet-denoiser-candidate", "corruption", "DENOISER")],
)
def test_the_makefile_validates_a_runs_purifier_behind_the_default(tmp_path, target, part, variable):
    """``make imagenet-strong-candidate`` composes STRONG into the default as its strong purifier (``config_variant.py
    --strong``), ``make imagenet-denoiser-candidate`` DENOISER as its route-2 denoiser (``--corruption``), and each
    validates that folder beside no defense and beside the default under the trained corruptions."""
    from recondefense.defense import DEFAULT_IMAGENET_WEIGHTS

    out = tmp_path / "candidate"
    lines = run_make(
        "-n",  # print what it would run; IMAGENET_STAMP empty: no install either
        target,
        f"PY={sys.executable}",
        f"{variable}=run/checkpoint.safetensors",
        f"{variable}_OUT={out}",
        "IMAGENET_STAMP=",
    )
    compose = f"scripts/config_variant.py --weights {DEFAULT_IMAGENET_WEIGHTS} --{part} run/checkpoint.safetensors"
    assert f"{compose} --out {out}" in lines
    assert "--tier imagenet-objects-val" in lines and f"--defenses none,{out} --json {out}-val.json" in lines
    # then it and the default under the trained corruptions on validation crops, never the held-out four
    from recondefense.budgets import HELD_OUT_CORRUPTIONS
    from recondefense.corruptions import CORRUPTIONS

    flat = " ".join(lines.replace("\\\n", " ").split())
    assert "--tier imagenet-objects-val --no-progress --corruptions " in flat  # validation crops, not the test's
    corruption_run = flat.split("--corruptions ", 1)[1]
    named = corruption_run.split()[0].split(",")
    assert named == [c for c in CORRUPTIONS if c not in HELD_OUT_CORRUPTIONS] and len(named) == 11
    assert f"--defenses {DEFAULT_IMAGENET_WEIGHTS},{out} --json {out}-val-corruptions.json" in corruption_run
    assert not out.exists()  # -n: nothing run


def test_the_makefile_judges_two_defenses_on_the_very_same_attacked_test_crops():
    """``make imagenet-objects-paired``: PGD aimed at Lite0 and at the unseen Lite1 on the object test crops, every
    defense of PAIRED in one run each (one attack, every defense judged on it), rows named by PAIRED_ROWS; the
    results page's paired tables cite that command."""
    lines = run_make(
        "-n", "imagenet-objects-paired", f"PY={sys.executable}", "PAIRED=a,b", "PAIRED_ROWS=x", "IMAGENET_STAMP="
    )
    flat = " ".join(lines.replace("\\\n", " ").split())
    runs = flat.split("python -m recondefense.evaluate")[1:]
    assert len(runs) == 2 and all(
        "--tier imagenet-objects " in run and "--attacks pgd --defenses a,b" in run for run in runs
    )
    assert "--json results/imagenet/objects-paired-x.json" in runs[0] and "--classifier" not in runs[0]
    assert "--classifier imagenet-efficientnet_lite1" in runs[1]
    assert "--json results/imagenet/objects-lite1-paired-x.json" in runs[1]
    pages = (REPO / "scripts" / "results_pages.py").read_text()
    assert pages.count("command=PAIRED_COMMAND") == 2 and 'f"make imagenet-objects-paired PAIRED={ROUTED20},' in pages


# ------------------------------------------------------------------------------------------ the strong purifier


def test_a_strong_purifier_stands_in_for_route_1_on_flagged_images_and_a_clean_batch_pays_for_the_small_one():
    """``strong_widths``: a wider AE replaces route 1's purifier where route 1 holds at least ``strong_above``; the
    small purifier keeps every other image (dense: ``bypass_below`` 0 for route 1), as without the strong one."""
    from recondefense.routing import blend

    torch.manual_seed(0)
    net = RoutedPurifier(**SMALL, bypass_below=[0.0, 0.05], strong_widths=[8, 8, 8], strong_above=0.5).eval()
    assert net.strong.widths == (8, 8, 8) and net.stride == 8  # the strong AE's depth 3 sets the stride
    with torch.no_grad():
        for p in net.strong.parameters():
            p.add_(0.05 * torch.randn_like(p))  # not the small AE's function
    # image 0: shut; 1: route 1 open; 2: route 1 at exactly 0.5 (strong); 3: route 1 at 0.27 (small)
    net.gate = FixedLogits([[-30.0, -30.0], [30.0, -30.0], [0.0, -30.0], [-1.0, -30.0]])
    calls: dict[str, list[int]] = {"bottleneck": [], "strong": []}
    for name in calls:
        getattr(net, name).register_forward_hook(lambda m, args, out, name=name: calls[name].append(len(args[0])))
    x = torch.rand(4, 3, 16, 16)
    x[:, 0, 0, 0] = torch.arange(4) / 10
    with torch.no_grad():
        out = net(x)
        share = net.routes(x)[:, 1].view(-1, 1, 1, 1)
        chosen = torch.cat([net.bottleneck(x[[0]]), net.strong(x[[1, 2]]), net.bottleneck(x[[3]])])
        expected = (x + share * (chosen - x)).clamp(0, 1)
    torch.testing.assert_close(out, expected)
    assert calls["bottleneck"][0] == 2 and calls["strong"][0] == 2  # images 0, 3 and 1, 2
    calls = {"bottleneck": [], "strong": []}
    with torch.no_grad():
        net(x[[0, 3]])  # nothing flagged: the small purifier on the whole batch, the strong one never
        assert calls == {"bottleneck": [2], "strong": []}
        traced = blend(x, net.routes(x)[:, 1:], net.experts(), (0.0, 0.05), True, 0.0, (net.strong, 0.5))
    torch.testing.assert_close(traced, out)  # training / tracing: both run densely, the same image chosen


def test_strong_purifier_config_round_trips_and_bad_values_are_refused(tmp_path):
    torch.manual_seed(0)
    defense = ReconstructiveDefense(arch="routed", **SMALL, strong_widths=[8, 8], strong_above=0.4)
    defense.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert (config["strong_widths"], config["strong_above"]) == ([8, 8], 0.4)
    loaded = ReconstructiveDefense.from_pretrained(tmp_path)
    assert loaded.purifier_config == defense.purifier_config and loaded.autoencoder.strong.widths == (8, 8)
    x = torch.rand(2, 3, 16, 16)
    assert torch.equal(loaded(x), defense(x))
    assert ReconstructiveDefense(arch="routed", **SMALL).autoencoder.strong is None  # folders without the keys
    for change, message in (
        ({"strong_above": 0}, r"strong_above=0: expected a number in \(0, 1\]"),
        ({"strong_above": 1.5}, r"strong_above=1.5"),
        ({"strong_widths": [0, 4]}, r"strong_widths=\[0, 4\]: expected null or a list"),
    ):
        with pytest.raises(ValueError, match=message):
            PurifierConfig(arch="routed", **change).validate()


def test_compose_routed_puts_a_strong_purifier_in_bit_exactly():
    from test_scripts import load_script

    module = load_script("compose_routed")
    torch.manual_seed(0)
    routed, small = ReconstructiveDefense(arch="routed", **SMALL), ReconstructiveDefense(widths=[4, 2])
    wide = ReconstructiveDefense(widths=[4, 16])
    with torch.no_grad():
        for p in wide.parameters():
            p.add_(0.05 * torch.randn_like(p))
    composed = module.compose(routed, small, routed, strong=wide, strong_above=0.3)
    assert (composed.hyperparameters["strong_widths"], composed.hyperparameters["strong_above"]) == ([4, 16], 0.3)
    state = composed.autoencoder.state_dict()
    assert all(torch.equal(v, state["strong." + k]) for k, v in wide.autoencoder.state_dict().items())
    again = module.compose(composed, composed, composed, strong=composed)  # the strong part of a routed folder
    assert all(torch.equal(v, again.state_dict()[k]) for k, v in composed.state_dict().items())
    assert module.compose(composed, small, routed).autoencoder.strong is None  # none unless --strong names one
    plain = ReconstructiveDefense(width=8, depth=2)  # widths from width and depth, spelled out
    assert module.compose(routed, small, routed, strong=plain).hyperparameters["strong_widths"] == [8, 4]


def test_a_training_run_started_from_weights_with_a_strong_purifier_keeps_it():
    """``recondefense train --init-from`` (or ``fit(defense=...)``) of such weights: ``--strong-widths`` builds the
    strong purifier and the start fills it; without the flag the start's network does not fit, and says so."""
    from recondefense.train import TrainConfig
    from recondefense.train.network import build_network

    torch.manual_seed(0)
    start = ReconstructiveDefense(arch="routed", **SMALL, strong_widths=[8, 8], strong_above=0.4)
    config = TrainConfig(arch="routed", **SMALL, strong_widths="8,8", strong_above=0.4)
    net = build_network(config, 3, start)
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in start.autoencoder.state_dict().items())
    assert net.strong_above == 0.4
    with pytest.raises(ValueError, match="does not match") as caught:
        build_network(TrainConfig(arch="routed", **SMALL), 3, start)
    assert "--strong-widths 8,8" in str(caught.value)
    assert "--impulse-range" not in str(caught.value)  # no flag: the start's own come with it
    with pytest.raises(ValueError, match="--strong-widths '8,x'"):
        build_network(TrainConfig(arch="routed", **SMALL, strong_widths="8,x"), 3, None)


def test_brightened_images_are_lowered_back_before_the_gate_and_others_pass_exactly(tmp_path):
    """``black_point_floor``: an image whose darkest 4 x 4 block has an HSV value of at least the floor has every
    pixel's value lowered by it (ImageNet-C's brightness, which raises every value, undone where it did not clip, to
    the black point the image had); images below the floor, and every image with floor 0, are untouched."""
    from recondefense.corruptions import corrupt
    from recondefense.levels import black_point, restore_black_point, restore_levels

    torch.manual_seed(0)
    blocks = 0.05 + 0.5 * torch.rand(3, 3, 8, 8)
    blocks[:, :, 0, 0] = 0.0  # a black block, as photos nearly always have: black point 0
    clean = F.interpolate(blocks, scale_factor=4, mode="nearest")
    assert torch.equal(black_point(clean), torch.zeros(3))
    bright = corrupt(clean, "brightness", 3)  # every value raised by 0.3; nothing reaches 1
    torch.testing.assert_close(black_point(bright), torch.full((3,), 0.3))
    torch.testing.assert_close(restore_black_point(bright, 0.1), clean, atol=1e-6, rtol=0)
    assert torch.equal(restore_black_point(clean, 0.1), clean)  # below the floor: exactly as it came
    assert restore_black_point(bright, 0.0) is bright  # floor 0: off
    assert torch.equal(restore_black_point(bright, 0.35), bright)  # a black point below the floor: untouched
    near_white = clean.clone()
    near_white[..., 8:12, 8:12] = 0.9  # raised to 1 (clipped): it comes back at 1 - 0.3, what was there is lost
    restored = restore_black_point(corrupt(near_white, "brightness", 3), 0.1)
    torch.testing.assert_close(restored[..., 8:12, 8:12], torch.full((3, 3, 4, 4), 0.7))
    torch.testing.assert_close(restored[..., :8, :], clean[..., :8, :], atol=1e-6, rtol=0)
    torch.testing.assert_close(restore_levels(bright, 0.0, 0.2, 0.1), restore_black_point(bright, 0.1))
    # in a routed (and gated) purifier it comes before the gate, after the contrast stretch
    for arch in ("routed", "gated"):
        defense = ReconstructiveDefense(arch=arch, **SMALL, black_point_floor=0.1)
        plain = ReconstructiveDefense(arch=arch, **SMALL)
        plain.load_state_dict(defense.state_dict())
        torch.testing.assert_close(defense(bright), plain(restore_black_point(bright, 0.1)))
        assert torch.equal(defense(clean), plain(clean))
    defense.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["black_point_floor"] == 0.1
    loaded = ReconstructiveDefense.from_pretrained(tmp_path)
    assert loaded.autoencoder.black_point_floor == 0.1 and torch.equal(loaded(bright), defense(bright))
    assert PurifierConfig(arch="routed").black_point_floor == 0.0  # config.json files without the key: untouched
    with pytest.raises(ValueError, match=r"black_point_floor=2: expected a number in \[0, 1\]"):
        PurifierConfig(arch="routed", black_point_floor=2).validate()
