"""The routed gate's steep opening (issue 24): above a gate logit ``at`` the gate opens ``steepness`` times faster,
so attacked images the gate reads weakly get the strong purifier, while images far below ``at`` (clean traffic,
and the small dense share that undoes DeepFool) keep exactly what they had (CPU, seconds)."""

from __future__ import annotations

import pytest
import torch

from recondefense import ReconstructiveDefense
from recondefense.gate import steepen_opening
from recondefense.purifier_config import PurifierConfig

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL = {"width": 4, "depth": 2, "detail_width": 4, "detail_depth": 1, "corruption_width": 4, "corruption_depth": 1}


def test_images_far_below_the_opening_keep_their_logits_and_the_rest_open_steeply_in_proportion():
    at, steepness = -2.0, 8.0
    gate_logits = torch.tensor([-4.0, -3.0, -2.3, -2.0, -1.5, 3.0, 150.0])
    spread = torch.tensor([0.0, -1.0, -2.0, 0.5, -0.25, 1.0, -101.0])  # expert logits around each gate logit
    logits = torch.stack([gate_logits, gate_logits + spread], dim=1)
    logits = logits - torch.logsumexp(logits, 1, keepdim=True) + gate_logits[:, None]  # logsumexp = gate_logits
    out = steepen_opening(logits, at, steepness)
    opened = torch.logsumexp(out, 1)
    below = gate_logits <= steepness * at / (steepness - 1)  # -2.29: the first three
    assert below.tolist() == [True, True, True, False, False, False, False]
    torch.testing.assert_close(out[below], logits[below], rtol=0, atol=0)
    torch.testing.assert_close(opened[~below], steepness * (gate_logits[~below] - at))
    assert abs(opened[3].item()) < 1e-5  # half open at ``at``
    torch.testing.assert_close(out[:, 1] - out[:, 0], logits[:, 1] - logits[:, 0])  # the routes' proportions


def test_a_routed_purifier_with_a_steep_opening_routes_through_it_and_round_trips(tmp_path):
    defense = ReconstructiveDefense(arch="routed", **SMALL, gate_steep_opening=(-1.0, 4.0))
    net = defense.autoencoder
    with torch.no_grad():  # a gate that reads something: the untrained one's last layer is 0
        net.gate[-1].weight.normal_(0, 0.5)
        net.gate[-1].bias.fill_(-1.0)
    x = torch.rand(4, 3, 16, 16)
    expected = steepen_opening(net.gate(x), -1.0, 4.0)
    torch.testing.assert_close(net.expert_logits(x), expected)
    torch.testing.assert_close(net.gate_value(x), torch.sigmoid(torch.logsumexp(expected, 1)))
    plain = ReconstructiveDefense(arch="routed", **SMALL)
    plain.load_state_dict(defense.state_dict())  # the opening adds no tensors
    torch.testing.assert_close(plain.autoencoder.expert_logits(x), net.gate(x))
    defense.save_pretrained(tmp_path)
    loaded = ReconstructiveDefense.from_pretrained(tmp_path)
    assert loaded.purifier_config.gate_steep_opening == (-1.0, 4.0)
    assert loaded.autoencoder.steep_opening == (-1.0, 4.0)
    torch.testing.assert_close(loaded.autoencoder(x), net(x))


@pytest.mark.parametrize("value", [(-1.0, 1.0), (-21.0, 8.0), (0.0, 101.0), (1.0,), "1,8"])
def test_a_steep_opening_out_of_range_is_named(value):
    problem = PurifierConfig(arch="routed", gate_steep_opening=value).problem()
    assert problem is not None and problem[0] == "gate_steep_opening"
    assert PurifierConfig(arch="routed", gate_steep_opening=(-2.0, 8.0)).problem() is None


def test_only_the_routed_purifier_takes_a_steep_opening():
    with pytest.raises(TypeError, match="gate_steep_opening"):
        PurifierConfig.for_architecture("gated", gate_steep_opening=(-2.0, 8.0))


def test_config_variant_sets_the_steep_opening_and_keeps_every_tensor():
    from test_scripts import load_script

    variant_script = load_script("config_variant")
    defense = ReconstructiveDefense(arch="routed", **SMALL)
    key, value = variant_script.parse_setting("gate_steep_opening=-2,8")
    out = variant_script.variant(defense, {key: value}, {})
    assert out.purifier_config.gate_steep_opening == (-2.0, 8.0)
    for name, tensor in defense.state_dict().items():
        torch.testing.assert_close(out.state_dict()[name], tensor, rtol=0, atol=0)
