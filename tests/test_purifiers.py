"""The purifier architectures: identity at initialisation, config round trips, old configs still load."""

from __future__ import annotations

import json

import pytest
import torch

from recondefense import ReconstructiveDefense
from recondefense.autoencoder import ConvBNReLU, ReconAutoencoder
from recondefense.purifier_config import ARCHITECTURE_KEYS, PurifierConfig
from recondefense.purifiers import (
    ARCHITECTURES,
    DetailPurifier,
    ResidualPurifier,
    build_purifier,
    pad_to_stride,
)
from recondefense.weights import get_weights, list_weights, weights_root


def test_residual_purifier_is_exactly_the_identity_at_init():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 32, 48)
    assert torch.equal(ResidualPurifier(width=8, depth=2)(x), x)
    defense = ReconstructiveDefense(arch="residual", width=8, depth=2)
    odd = torch.rand(3, 37, 29)  # padded to the stride and cropped back
    assert torch.equal(defense(odd), odd)


def test_detail_purifier_equals_its_bottleneck_at_init():
    torch.manual_seed(0)
    net = DetailPurifier(width=8, depth=2, detail_width=4).eval()
    x = torch.rand(2, 3, 16, 16)
    assert torch.equal(net(x), net.bottleneck(x).clamp(0, 1))


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_new_configs_round_trip(tmp_path, arch):
    torch.manual_seed(0)
    defense = ReconstructiveDefense(arch=arch, width=8, depth=2, detail_width=4, detail_depth=1)
    with torch.no_grad():  # leave the identity so the round trip checks real weights
        for p in defense.parameters():
            p.add_(0.01 * torch.randn_like(p))
    defense.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["arch"] == arch
    loaded = ReconstructiveDefense.from_pretrained(tmp_path)
    assert loaded.arch == arch and type(loaded.autoencoder) is ARCHITECTURES[arch][0]
    x = torch.rand(1, 3, 20, 20)
    assert torch.equal(loaded(x), defense(x))


def test_old_configs_without_arch_load_as_the_paper_autoencoder(tmp_path):
    defense = ReconstructiveDefense(width=8, depth=2)
    defense.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    for key in ("arch", "detail_width", "detail_depth"):  # what a version-1 file written before them holds
        config.pop(key)
    (tmp_path / "config.json").write_text(json.dumps(config))
    loaded = ReconstructiveDefense.from_pretrained(tmp_path)
    assert loaded.arch == "recon" and isinstance(loaded.autoencoder, ReconAutoencoder)


def test_unknown_architecture_is_refused():
    with pytest.raises(ValueError, match="unknown purifier architecture"):
        ReconstructiveDefense(arch="unet9000")
    with pytest.raises(ValueError, match="unknown purifier architecture"):
        build_purifier("nope")


def test_one_registry_builds_from_a_config_or_a_name():
    """(That the config module imports no network: tests/test_imports.py.)"""
    assert set(ARCHITECTURES) == set(ARCHITECTURE_KEYS)
    assert all(ARCHITECTURES[a].keys == ARCHITECTURE_KEYS[a] for a in ARCHITECTURES)
    config = PurifierConfig(1, width=4, depth=2, arch="residual")
    from_config, from_name = build_purifier(config), build_purifier("residual", in_channels=1, width=4, depth=2)
    assert type(from_config) is ARCHITECTURES["residual"].module is type(from_name)
    assert from_config.state_dict().keys() == from_name.state_dict().keys()
    with pytest.raises(TypeError, match="takes no keyword arguments"):
        build_purifier(config, width=8)
    with pytest.raises(TypeError, match="'detail' got unexpected keyword arguments \\['inner'\\]"):
        DetailPurifier(3, inner="residual")


def test_gated_purifier_starts_nearly_closed_and_applies_its_autoencoder_when_open():
    from recondefense.purifiers import GatedPurifier

    torch.manual_seed(0)
    net = GatedPurifier(width=8, depth=2, detail_width=4, detail_depth=2).eval()
    x = torch.rand(3, 3, 16, 16)
    gate = net.gate_value(x)
    assert gate.shape == (3,) and torch.allclose(gate, torch.full((3,), torch.sigmoid(torch.tensor(-4.0)).item()))
    assert (net(x) - x).abs().max() <= 0.02  # within 2% of the identity before training
    with torch.no_grad():
        net.gate[-1].bias.fill_(50.0)  # fully open: the autoencoder's output
    assert torch.allclose(net(x), net.bottleneck(x).clamp(0, 1), atol=1e-6)


def test_gated_purifier_can_hold_a_residual_purifier_and_start_from_its_weights(tmp_path):
    from recondefense.errors import ConfigError
    from recondefense.purifiers import GatedPurifier

    torch.manual_seed(0)
    net = GatedPurifier(width=4, depth=2, detail_width=4, detail_depth=1, inner="residual").eval()
    assert isinstance(net.bottleneck, ResidualPurifier) and net.stride == 1
    x = torch.rand(2, 3, 15, 17)  # any size: the residual purifier needs no padding
    with torch.no_grad():
        net.bottleneck.correction.out.bias.fill_(0.1)
        net.gate[-1].bias.fill_(50.0)
    assert torch.allclose(net(x), (x + 0.1).clamp(0, 1), atol=1e-6)
    defense = ReconstructiveDefense(arch="gated", inner="residual", width=4, depth=2, detail_width=4, detail_depth=1)
    defense.save_pretrained(tmp_path / "ok")
    assert ReconstructiveDefense.from_pretrained(tmp_path / "ok").autoencoder.inner == "residual"
    config = json.loads((tmp_path / "ok" / "config.json").read_text())
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "config.json").write_text(json.dumps(config | {"inner": "detail"}))
    (tmp_path / "bad" / "model.safetensors").write_bytes((tmp_path / "ok" / "model.safetensors").read_bytes())
    with pytest.raises(ConfigError, match="inner"):
        ReconstructiveDefense.from_pretrained(tmp_path / "bad")
    with pytest.raises(ValueError, match="behind the gate"):
        GatedPurifier(inner="detail")


def test_model_card_names_the_held_out_corruptions():
    defense = ReconstructiveDefense(width=4, depth=2, meta={"held_out_corruptions": ["frost", "pixelate"]})
    assert "Held-out corruptions (never trained on): frost, pixelate" in str(defense.generate_model_card())


def test_saving_into_a_folder_rewrites_its_card_for_the_new_weights(tmp_path):
    first = ReconstructiveDefense(width=4, depth=2, meta={"held_out_corruptions": ["frost"]})
    first.save_pretrained(tmp_path / "w")
    assert "Held-out corruptions (never trained on): frost" in (tmp_path / "w" / "README.md").read_text()
    again = ReconstructiveDefense(width=4, depth=2, meta={"held_out_corruptions": ["pixelate"]})
    again.save_pretrained(tmp_path / "w")  # the hub mixin alone keeps a README.md that exists: the old weights' card
    card = (tmp_path / "w" / "README.md").read_text()
    assert "never trained on): pixelate" in card and "frost" not in card
    assert ReconstructiveDefense.from_pretrained(tmp_path / "w").meta["held_out_corruptions"] == ["pixelate"]


def test_recon_autoencoder_refuses_sizes_off_its_stride_with_the_fix():
    ae = ReconAutoencoder(1, width=4, depth=3).eval()
    assert ae(torch.rand(1, 1, 32, 16)).shape == (1, 1, 32, 16)
    with pytest.raises(ValueError, match="multiples of 8, got 28x28: pad the images"):
        ae(torch.rand(1, 1, 28, 28))
    with pytest.raises(ValueError, match="got 32x20"):
        DetailPurifier(1, width=4, depth=3, detail_width=4, detail_depth=1)(torch.rand(1, 1, 32, 20))


def test_conv_bn_relu_folds_its_batch_norm_outside_training_to_the_same_values():
    torch.manual_seed(0)
    ae = ReconAutoencoder(widths=(8, 4))
    for module in ae.modules():  # running statistics and affine terms far from the identity
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.2, 3.0)
            module.weight.data.uniform_(0.5, 2.0)
            module.bias.data.uniform_(-0.3, 0.3)
    blocks = [m for m in ae.modules() if isinstance(m, ConvBNReLU)]
    assert any(isinstance(b[0], torch.nn.ConvTranspose2d) for b in blocks) and len(blocks) == 7
    x = torch.rand(2, 3, 16, 16, requires_grad=True)
    ae.eval()
    folded = ae(x)
    (grad_folded,) = torch.autograd.grad(folded.sum(), x)
    unfolded = torch.nn.Sequential.forward
    with pytest.MonkeyPatch.context() as patch:  # the three layers one after another, as in training
        patch.setattr(ConvBNReLU, "forward", unfolded)
        reference = ae(x)
        (grad_reference,) = torch.autograd.grad(reference.sum(), x)
    torch.testing.assert_close(folded, reference, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(grad_folded, grad_reference, atol=1e-5, rtol=1e-4)
    ae.train()  # training normalises with the batch's statistics and updates the running ones
    before = blocks[0][1].running_mean.clone()
    ae(x)
    assert not torch.equal(blocks[0][1].running_mean, before)
    assert set(ae.state_dict()) == set(ReconAutoencoder(widths=(8, 4)).state_dict())


def test_pad_to_stride_replicates_the_bottom_and_right_edges():
    x = torch.rand(2, 3, 5, 6)
    padded = pad_to_stride(x, 4)
    assert padded.shape == (2, 3, 8, 8) and torch.equal(padded[..., :5, :6], x)
    assert torch.equal(padded[..., 7, :6], x[..., 4, :]) and torch.equal(padded[..., :5, 7], x[..., :, 5])
    assert pad_to_stride(x, 1) is x and pad_to_stride(padded, 4).shape == padded.shape


@pytest.mark.parametrize("name", list_weights())
def test_every_shipped_config_json_is_a_valid_purifier_config(name):
    """One PurifierConfig for every config.json: the shipped ones read back unchanged, valid, building the network
    the defense holds."""

    config = json.loads((weights_root() / get_weights(name).folder / "config.json").read_text())
    purifier = PurifierConfig.from_dict(config)
    assert purifier.validate() is purifier
    assert {k: v for k, v in purifier.as_dict().items() if k in config} == {
        k: v for k, v in config.items() if k not in ("meta", "format_version")
    }
    defense = ReconstructiveDefense.from_pretrained(name)
    assert defense.purifier_config == purifier and defense.hyperparameters == purifier.as_dict()
    with torch.device("meta"):
        names = {k for k, _ in build_purifier(purifier).named_parameters()}
    assert names == {k for k, _ in defense.autoencoder.named_parameters()}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"width": 0}, r"width=0: expected an integer in \[1, 1024\]"),
        ({"skip": 1}, "skip=1: expected true or false"),
        ({"widths": [4, "8"]}, "widths=.*: expected null or a list of 1 to 8 integers"),
        ({"arch": "unet"}, "arch='unet': expected one of"),
        ({"inner": "detail"}, "inner='detail': expected one of"),
        ({"pass_smoothing": 1.5}, r"pass_smoothing=1.5: expected a number in \[0, 1\]"),
    ],
)
def test_purifier_config_names_what_is_wrong_without_building(change, message):
    with pytest.raises(ValueError, match=message):
        PurifierConfig(**change).validate()


def test_model_card_lists_the_photo_sources_of_an_object_photo_run(tmp_path):
    from recondefense.data import data_sources
    from recondefense.train.config import TrainConfig
    from recondefense.train.network import save_final

    ae = ReconAutoencoder(3, width=4, depth=2)
    config = TrainConfig(data="objects:8", classifier="imagenet-efficientnet_lite0", width=4, depth=2)
    save_final(ae, config, {"clean_acc": 1.0}, tmp_path / "final", epochs_trained=1)
    card = (tmp_path / "final" / "README.md").read_text()
    sources = data_sources("objects:8")
    assert {"tuxpaint-stamps-default", "gcompris-qt-data"} <= {s.split(":")[0] for s in sources}
    assert "## Photo sources" in card and all(f"- {source}" in card for source in sources)
    meta = ReconstructiveDefense.from_pretrained(tmp_path / "final").meta
    assert meta["data_sources"] == sources
    assert data_sources("fashionmnist") == [] and "Photo sources" not in str(
        ReconstructiveDefense().generate_model_card()
    )


def test_purifiers_are_built_from_one_purifier_config():
    """Issue 26: the composite purifiers and ReconstructiveDefense.from_config derive from PurifierConfig; the
    keyword arguments keep working, and one an architecture does not take is refused."""
    from recondefense.purifiers import GatedPurifier

    config = PurifierConfig(1, width=4, depth=2, arch="detail", detail_width=4, detail_depth=1)
    torch.manual_seed(0)
    made = ReconstructiveDefense.from_config(config, {"note": "kept"})
    torch.manual_seed(0)
    spelled = ReconstructiveDefense(in_channels=1, width=4, depth=2, arch="detail", detail_width=4, detail_depth=1)
    assert made.purifier_config == config and made.meta == {"note": "kept"}
    assert all(torch.equal(v, spelled.state_dict()[k]) for k, v in made.state_dict().items())
    assert type(made.autoencoder.bottleneck) is ReconAutoencoder and made.autoencoder.bottleneck.widths == (4, 2)
    with pytest.raises(TypeError, match="unexpected keyword arguments \\['inner'\\]"):
        DetailPurifier(inner="recon")
    gated = GatedPurifier(inner="residual")  # the gate's defaults: depth 3 behind it, a 3-level gate
    assert type(gated.bottleneck) is ResidualPurifier and gated.bottleneck.correction.depth == 3
    assert len([m for m in gated.gate if isinstance(m, torch.nn.Sequential)]) == 4


def test_gated_bypass_skips_the_purifier_on_images_whose_gate_is_shut():
    from recondefense.purifiers import GatedPurifier

    torch.manual_seed(0)
    dense = GatedPurifier(width=4, depth=2, detail_depth=1).eval()
    with torch.no_grad():  # a gate that opens with the image's brightness: dark images shut, bright ones open
        dense.gate[-1].weight.zero_()
        dense.gate[-1].bias.zero_()
        dense.gate[0][0].weight.zero_()
        dense.gate[0][0].bias.zero_()
        dense.gate[0][0].weight[:, :3] = 1.0
        dense.gate[-1].weight.fill_(1.0)
        dense.gate[-1].bias.fill_(-12.0)
    bypassed = GatedPurifier(width=4, depth=2, detail_depth=1, bypass_below=0.05).eval()
    bypassed.load_state_dict(dense.state_dict())
    x = torch.cat([torch.rand(2, 3, 16, 16) * 0.1, 0.6 + torch.rand(2, 3, 16, 16) * 0.4])
    gate = dense.gate_value(x)
    assert (gate[:2] < 0.05).all() and (gate[2:] > 0.05).all()
    with torch.no_grad():
        out, reference = bypassed(x), dense(x)
    assert torch.equal(out[:2], x[:2])  # shut: exactly the input, the purifier never ran on them
    assert (out[:2] - reference[:2]).abs().max() <= 0.05  # within bypass_below of the blend
    torch.testing.assert_close(out[2:], reference[2:])  # open: the same blend as without the bypass
    calls = []
    bypassed.bottleneck.register_forward_hook(lambda module, args, output: calls.append(len(args[0])))
    with torch.no_grad():
        bypassed(x)
        bypassed(x[:2])
    assert calls == [2]  # only the two open images; an all-shut batch runs no purifier at all
    bypassed.train()
    with torch.no_grad():
        torch.testing.assert_close(bypassed(x), dense.train()(x))  # training blends every image
    assert PurifierConfig(arch="gated").bypass_below == 0.0  # old config.json files: the purifier runs on all
    with pytest.raises(ValueError, match="bypass_below"):
        PurifierConfig(arch="gated", bypass_below=0.7).validate()


def test_the_pass_route_smooths_shut_images_alike_dense_and_bypassed_and_round_trips(tmp_path):
    """``pass_smoothing``: what a shut gate gives is x nudged towards its 3 x 3 binomial blur, dense or bypassed
    (the purifier never runs on those), within the gate's share of the purifier; 0 keeps the image exactly."""
    from recondefense.purifiers import GatedPurifier
    from recondefense.routing import binomial_blur

    torch.manual_seed(0)
    dense = GatedPurifier(width=4, depth=2, detail_depth=1, pass_smoothing=0.1).eval()
    bypassed = GatedPurifier(width=4, depth=2, detail_depth=1, pass_smoothing=0.1, bypass_below=0.05).eval()
    bypassed.load_state_dict(dense.state_dict())
    x = torch.rand(3, 3, 16, 16)
    with torch.no_grad():
        gate = dense.gate_value(x)  # about 0.018: shut
        smoothed = x + 0.1 * (binomial_blur(x) - x)
        assert (gate < 0.05).all()
        torch.testing.assert_close(bypassed(x), smoothed.clamp(0, 1))
        assert (dense(x) - smoothed).abs().max() <= gate.max()
    kernel = binomial_blur(torch.zeros(1, 1, 5, 5).index_fill_(2, torch.tensor([2]), 1.0))[0, 0, :, 2]
    torch.testing.assert_close(kernel, torch.tensor([0.0, 0.25, 0.5, 0.25, 0.0]))  # [1, 2, 1] / 4 each way
    defense = ReconstructiveDefense(arch="gated", width=4, depth=2, detail_depth=1, pass_smoothing=0.1)
    defense.save_pretrained(tmp_path)
    loaded = ReconstructiveDefense.from_pretrained(tmp_path)
    assert loaded.purifier_config.pass_smoothing == 0.1 and loaded.autoencoder.pass_smoothing == 0.1
    assert PurifierConfig(arch="gated").pass_smoothing == 0.0  # config.json files without the key: untouched


def test_noise_level_reads_the_noise_sigma_and_nothing_of_a_smooth_image():
    from recondefense.levels import noise_level

    torch.manual_seed(0)
    ramp = torch.linspace(0.2, 0.8, 64)
    smooth = (ramp[None, :] * 0.5 + ramp[:, None] * 0.5).expand(3, 64, 64)[None]  # linear: the kernel gives 0
    noisy = smooth + 0.1 * torch.randn(2, 3, 64, 64)  # no clipping at these levels
    assert noise_level(smooth).item() < 1e-6
    assert torch.allclose(noise_level(noisy), torch.full((2,), 0.1), rtol=0.05)
    assert torch.equal(noise_level(torch.rand(2, 3, 2, 5)), torch.zeros(2))  # too small to read: no noise


def test_a_residual_purifiers_strength_rises_with_the_noise_level():
    torch.manual_seed(0)
    net = ResidualPurifier(3, 4, 1, strength=0.5, noise_range=(0.1, 0.3)).eval()
    torch.nn.init.normal_(net.correction.out.weight, std=0.1)  # a correction that is not zero
    grey = torch.full((3, 3, 64, 64), 0.5)
    noise = torch.randn(3, 3, 64, 64) * torch.tensor([0.0, 0.2, 0.4]).view(-1, 1, 1, 1)
    x = (grey + noise).clamp(0, 1)
    share = net.share(x)
    assert share[0].item() == 0.5 and 0.7 < share[1].item() < 0.8 and share[2].item() == 1.0
    with torch.no_grad():
        expected = (x + share.view(-1, 1, 1, 1) * net.correction(x)).clamp(0, 1)
        assert torch.equal(net(x), expected)
        net.strength = 1.0  # all of the correction, as every purifier before the field
        assert torch.equal(net(x), (x + net.correction(x)).clamp(0, 1))


def test_a_routed_defense_keeps_its_corruption_strength_through_config_json(tmp_path):
    small = {"width": 4, "depth": 2, "detail_width": 4, "detail_depth": 1, "corruption_width": 4, "corruption_depth": 1}
    defense = ReconstructiveDefense(arch="routed", **small, corruption_strength=0.4, corruption_noise_range=(0.05, 0.2))
    assert (defense.autoencoder.corruption.strength, defense.autoencoder.corruption.noise_range) == (0.4, (0.05, 0.2))
    defense.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert (config["corruption_strength"], config["corruption_noise_range"]) == (0.4, [0.05, 0.2])
    loaded = ReconstructiveDefense.from_pretrained(tmp_path)
    assert loaded.purifier_config == defense.purifier_config
    del config["corruption_strength"], config["corruption_noise_range"]  # a folder written before the fields
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert ReconstructiveDefense.from_pretrained(tmp_path).autoencoder.corruption.strength == 1.0
    for bad, message in (
        ({"corruption_strength": 1.5}, r"corruption_strength=1.5: expected a number in \[0, 1\]"),
        ({"corruption_noise_range": (0.3, 0.1)}, "corruption_noise_range=.*: expected two numbers low < high"),
        ({"corruption_noise_range": [0.1]}, "corruption_noise_range=.*: expected two numbers"),
    ):
        with pytest.raises(ValueError, match=message):
            PurifierConfig(arch="routed", **bad).validate()
