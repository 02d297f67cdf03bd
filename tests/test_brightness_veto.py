"""The routed gate's brightness veto (issue 25): a second reading of the image with its black point restored caps
how far the gate opens, so that brightening alone does not send a photo to the purifiers (CPU, seconds)."""

from __future__ import annotations

import math

import pytest
import torch

from recondefense import ReconstructiveDefense
from recondefense.corruptions import corrupt
from recondefense.gate import VETO_BLACK_POINT, veto_brightened
from recondefense.levels import black_point, clipped_share, restore_black_point
from recondefense.purifier_config import PurifierConfig

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL = {"width": 4, "depth": 2, "detail_width": 4, "detail_depth": 1, "corruption_width": 4, "corruption_depth": 1}


def _brightness_gate(x: torch.Tensor) -> torch.Tensor:
    """A stand-in gate that reads brightness as an attack: two expert logits that grow with the mean pixel,
    ``(N, C, H, W)`` -> ``(N, 2)``."""
    level = 40 * (x.mean((1, 2, 3)) - 0.5)
    return torch.stack([level, level - 1], dim=1)


def _images() -> torch.Tensor:
    """Dark, mid-grey and brightened images (the last two of the dark ones under ImageNet-C's brightness):
    ``(6, 3, 16, 16)`` in [0, 1]."""
    torch.manual_seed(0)
    dark = 0.05 + 0.3 * torch.rand(2, 3, 16, 16)
    grey = 0.4 + 0.2 * torch.rand(2, 3, 16, 16)
    return torch.cat([dark, grey, corrupt(dark, "brightness", 5)])


def test_the_gate_logit_becomes_min_of_the_first_reading_and_the_capped_second():
    x, veto = _images(), 0.1
    floor = math.log(veto / (1 - veto))
    logits = _brightness_gate(x)
    opening = torch.logsumexp(logits, 1)
    restored = torch.logsumexp(_brightness_gate(restore_black_point(x, VETO_BLACK_POINT)), 1)
    expected = torch.minimum(opening, (restored - floor).clamp_min(floor))
    vetoed = veto_brightened(_brightness_gate, x, logits, veto, always=True)
    torch.testing.assert_close(torch.logsumexp(vetoed, 1), expected)
    assert (opening[4:] > 0).all() and (torch.sigmoid(torch.logsumexp(vetoed[4:], 1)) <= veto + 1e-6).all()
    # every expert logit moves by the same amount: the routes keep their proportions
    torch.testing.assert_close(vetoed[:, 0] - vetoed[:, 1], logits[:, 0] - logits[:, 1])


def test_a_veto_to_the_floor_caps_at_the_restored_reading_and_shuts_a_vetoed_image_to_the_veto():
    x, veto = _images(), 0.1
    floor = math.log(veto / (1 - veto))
    logits = _brightness_gate(x) + 3.0  # a gate whose restored readings sit above 2 f: the plain veto half-opens them
    opening = torch.logsumexp(logits, 1)
    restored = torch.logsumexp(_brightness_gate(restore_black_point(x, VETO_BLACK_POINT)) + 3.0, 1)
    to_floor = veto_brightened(
        lambda images: _brightness_gate(images) + 3.0, x, logits, veto, always=True, to_floor=True
    )
    torch.testing.assert_close(torch.logsumexp(to_floor, 1), torch.minimum(opening, restored.clamp_min(floor)))
    plain = veto_brightened(lambda images: _brightness_gate(images) + 3.0, x, logits, veto, always=True)
    assert (torch.logsumexp(to_floor, 1) <= torch.logsumexp(plain, 1) + 1e-6).all()
    near_floor = lambda images: torch.full((len(images), 2), floor - 1.0)  # noqa: E731  restored: f - 0.31
    shut = veto_brightened(near_floor, x, logits, veto, always=True, to_floor=True)
    half = veto_brightened(near_floor, x, logits, veto, always=True)
    assert (opening[4:] > 0).all()
    torch.testing.assert_close(torch.sigmoid(torch.logsumexp(shut[4:], 1)), torch.full((2,), veto))
    assert (torch.sigmoid(torch.logsumexp(half[4:], 1)) > 0.4).all()  # the plain veto leaves it near half open
    torch.testing.assert_close(to_floor[:, 0] - to_floor[:, 1], logits[:, 0] - logits[:, 1])


def test_a_veto_to_the_floor_round_trips_through_config_json_and_is_checked(tmp_path):
    defense = ReconstructiveDefense(arch="routed", **SMALL, brightness_veto=0.05, veto_to_floor=True)
    defense.save_pretrained(tmp_path)
    loaded = ReconstructiveDefense.from_pretrained(tmp_path)
    assert loaded.purifier_config.veto_to_floor is True and loaded.autoencoder.veto_to_floor is True
    assert PurifierConfig(arch="routed", veto_to_floor=1).problem() == ("veto_to_floor", "true or false")


def test_the_second_reading_is_taken_only_of_images_open_past_the_veto_and_matches_the_dense_one():
    x, seen = _images(), []

    def counting_gate(images: torch.Tensor) -> torch.Tensor:
        seen.append(len(images))
        return _brightness_gate(images)

    logits = _brightness_gate(x)
    open_past = int((torch.sigmoid(torch.logsumexp(logits, 1)) > 0.1).sum())
    sparse = veto_brightened(counting_gate, x, logits, 0.1, always=False)
    assert seen == [open_past] and 0 < open_past < len(x)
    torch.testing.assert_close(sparse, veto_brightened(_brightness_gate, x, logits, 0.1, always=True))
    shut = torch.full((3, 2), -6.0)  # no image above the veto: no second reading, the logits as they came
    assert veto_brightened(counting_gate, x[:3], shut, 0.1, always=False) is shut and len(seen) == 1


def test_a_higher_veto_black_point_leaves_photos_bright_by_nature_alone():
    """``veto_black_point``: only images whose black point is at least it are read a second time, restored; the
    others keep their first reading, as with no veto."""
    x, veto = _images(), 0.1
    assert (black_point(x[:4]) < 0.6).all() and (black_point(x[4:]) >= 0.6).all()  # dark, grey | brightened
    logits = _brightness_gate(x)
    high = veto_brightened(_brightness_gate, x, logits, veto, 0.6, always=True)
    torch.testing.assert_close(high[:4], logits[:4])
    torch.testing.assert_close(high[4:], veto_brightened(_brightness_gate, x, logits, veto, always=True)[4:])
    assert not torch.allclose(high[2:4], veto_brightened(_brightness_gate, x, logits, veto, always=True)[2:4])
    defense = ReconstructiveDefense(arch="routed", **SMALL, brightness_veto=veto, veto_black_point=0.6)
    net = defense.autoencoder
    with torch.no_grad():
        net.gate[-1].weight.normal_(0, 0.5)
        net.gate[-1].bias.fill_(1.0)
    torch.testing.assert_close(net.expert_logits(x), veto_brightened(net.gate, x, net.gate(x), veto, 0.6, always=True))
    assert defense.hyperparameters["veto_black_point"] == 0.6 and net.veto_black_point == 0.6
    assert ReconstructiveDefense(arch="routed", **SMALL).autoencoder.veto_black_point == VETO_BLACK_POINT
    assert PurifierConfig(arch="routed", veto_black_point=1.5).problem() == ("veto_black_point", "a number in [0, 1]")


def test_a_routed_purifier_with_a_veto_routes_through_it_and_keeps_its_config():
    defense = ReconstructiveDefense(arch="routed", **SMALL, brightness_veto=0.2)
    net = defense.autoencoder
    with torch.no_grad():  # a gate that reads something: the untrained one's last layer is 0
        net.gate[-1].weight.normal_(0, 0.5)
        net.gate[-1].bias.fill_(1.0)
    x = _images()
    expected = veto_brightened(net.gate, x, net.gate(x), 0.2, always=True)
    torch.testing.assert_close(net.expert_logits(x), expected)
    torch.testing.assert_close(net.gate_value(x), torch.sigmoid(torch.logsumexp(expected, 1)))
    plain = ReconstructiveDefense(arch="routed", **SMALL)
    plain.load_state_dict(defense.state_dict())  # the veto adds no tensors
    torch.testing.assert_close(plain.autoencoder.expert_logits(x), net.gate(x))
    assert defense.hyperparameters["brightness_veto"] == 0.2 and plain.hyperparameters["brightness_veto"] == 0.0


def test_the_veto_round_trips_through_config_json(tmp_path):
    defense = ReconstructiveDefense(arch="routed", **SMALL, brightness_veto=0.05)
    defense.save_pretrained(tmp_path)
    loaded = ReconstructiveDefense.from_pretrained(tmp_path)
    assert loaded.purifier_config.brightness_veto == 0.05 and loaded.autoencoder.brightness_veto == 0.05


@pytest.mark.parametrize("value", [-0.1, 0.6, "0.1", None])
def test_a_veto_out_of_range_is_named(value):
    assert PurifierConfig(arch="routed", brightness_veto=value).problem() == ("brightness_veto", "a number in [0, 0.5]")
    assert PurifierConfig(arch="routed", brightness_veto=0.5).problem() is None


def test_only_the_routed_purifier_takes_a_veto():
    with pytest.raises(TypeError, match="brightness_veto"):
        PurifierConfig.for_architecture("gated", brightness_veto=0.1)


def test_compose_routed_sets_the_veto_and_keeps_every_tensor():
    from test_scripts import load_script

    module = load_script("compose_routed")
    torch.manual_seed(0)
    routed = ReconstructiveDefense(arch="routed", **SMALL)
    composed = module.compose(routed, routed, routed, brightness_veto=0.1)
    assert composed.autoencoder.brightness_veto == 0.1
    assert all(torch.equal(v, composed.state_dict()[k]) for k, v in routed.state_dict().items())
    assert module.compose(routed, routed, routed).autoencoder.brightness_veto == 0.0


def test_veto_clipped_reads_a_second_time_only_images_with_enough_clipped_pixels():
    """``veto_clipped``: brightening clips a photo's bright pixels at 1, an attack moves them off it; an image whose
    :func:`clipped_share` is below the threshold keeps its first reading, the others are vetoed as without it."""
    torch.manual_seed(0)
    grey = 0.4 + 0.2 * torch.rand(2, 3, 16, 16)
    x, veto = torch.cat([grey, corrupt(grey, "brightness", 5)]), 0.1
    share = clipped_share(x)
    assert (share[:2] == 0).all() and (share[2:] > 0.5).all()
    logits = _brightness_gate(x)
    unrestricted = veto_brightened(_brightness_gate, x, logits, veto, always=True)
    restricted = veto_brightened(_brightness_gate, x, logits, veto, VETO_BLACK_POINT, 0.5, always=True)
    torch.testing.assert_close(restricted[:2], logits[:2])
    torch.testing.assert_close(restricted[2:], unrestricted[2:])
    assert not torch.allclose(unrestricted[:2], logits[:2])  # the grey images would have been vetoed without it
    sparse = veto_brightened(_brightness_gate, x, logits, veto, VETO_BLACK_POINT, 0.5, always=False)
    torch.testing.assert_close(sparse, restricted)
    net = ReconstructiveDefense(arch="routed", **SMALL, brightness_veto=veto, veto_clipped=0.5).autoencoder
    assert net.veto_clipped == 0.5 and ReconstructiveDefense(arch="routed", **SMALL).autoencoder.veto_clipped == 0
    assert PurifierConfig(arch="routed", veto_clipped=-0.1).problem() == ("veto_clipped", "a number in [0, 1]")
