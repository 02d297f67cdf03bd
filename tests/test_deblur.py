"""The routed purifier's deblurring purifier (issue 25): the sharpness it is routed by, its share, where it runs,
its config, and composing it in (CPU, seconds)."""

from __future__ import annotations

import json
from unittest import mock

import pytest
import torch
import torch.nn.functional as F

from recondefense import ReconstructiveDefense
from recondefense.corruptions import corrupt
from recondefense.levels import blur_ratio, deblur_share, sharpness, unsharp_mask
from recondefense.purifier_config import PurifierConfig
from recondefense.purifiers import RoutedPurifier, UnsharpMask
from recondefense.routing import partly

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL = {"width": 4, "depth": 2, "detail_width": 4, "detail_depth": 1, "corruption_width": 4, "corruption_depth": 1}


def _photos(count: int = 4) -> torch.Tensor:
    """Smooth random shapes with fine texture on top: ``(count, 3, 80, 80)`` in [0, 1] (every defocus severity
    changes images of 75 px and more)."""
    torch.manual_seed(0)
    base = F.interpolate(torch.rand(count, 3, 5, 5), size=80, mode="bilinear", align_corners=False)
    return (0.8 * base + 0.2 * torch.rand(count, 3, 80, 80)).clamp(0, 1)


def test_sharpness_reads_detail_for_the_contrast_and_falls_with_blur():
    checker = (torch.arange(8)[:, None] + torch.arange(8)[None, :]).remainder(2).float().expand(1, 3, 8, 8)
    torch.testing.assert_close(sharpness(checker), torch.tensor([8.0]))  # |Laplacian| 4 over a spread of 0.5
    torch.testing.assert_close(sharpness(0.5 * checker + 0.25), torch.tensor([8.0]))  # contrast-invariant
    assert torch.equal(sharpness(torch.full((2, 3, 8, 8), 0.4)), torch.zeros(2))  # flat: 0, not 0 / 0
    assert torch.equal(sharpness(torch.rand(2, 3, 2, 9)), torch.zeros(2))  # too small for a 3 x 3 kernel
    photos = _photos()
    before = sharpness(photos)
    for severity in (1, 3, 5):
        after = sharpness(corrupt(photos, "defocus_blur", severity))
        assert (after < before).all()
        before = after


def test_the_deblur_share_is_full_below_the_range_none_above_and_linear_between():
    checker = (torch.arange(8)[:, None] + torch.arange(8)[None, :]).remainder(2).float().expand(1, 3, 8, 8)
    assert deblur_share(checker, (1.0, 4.0)).item() == 0.0  # sharpness 8
    assert deblur_share(checker, (8.0, 9.0)).item() == 1.0
    torch.testing.assert_close(deblur_share(checker, (6.0, 10.0)), torch.tensor([0.5]))


def test_partly_runs_the_purifier_only_where_the_share_is_positive_and_matches_the_dense_blend():
    calls: list[int] = []

    def halve(x: torch.Tensor) -> torch.Tensor:
        calls.append(len(x))
        return x / 2

    x, share = torch.rand(3, 3, 8, 8), torch.tensor([0.0, 0.5, 1.0])
    sparse = partly(x, share, halve, always=False)
    assert calls == [2]
    torch.testing.assert_close(sparse, partly(x, share, halve, always=True))
    assert torch.equal(sparse[0], x[0])
    torch.testing.assert_close(sparse[2], x[2] / 2)
    assert partly(x, torch.zeros(3), halve, always=False) is x and calls == [2, 3]


def test_a_routed_purifier_deblurs_smooth_images_before_the_gate_and_passes_sharp_ones_exactly():
    torch.manual_seed(0)
    photos = _photos(2)
    blurred = corrupt(photos, "defocus_blur", 5)
    sharp, smooth = sharpness(photos), sharpness(blurred)
    assert (smooth < sharp.min()).all()
    bounds = (float(smooth.max()) + 1e-3, float(sharp.min()) - 1e-3)  # every blurred image fully, no sharp one
    net = RoutedPurifier(**SMALL, bypass_below=[0.0, 0.05], deblur_sharpness_range=bounds).eval()
    plain = RoutedPurifier(**SMALL, bypass_below=[0.0, 0.05]).eval()
    plain.load_state_dict({k: v for k, v in net.state_dict().items() if not k.startswith("deblur.")})
    with torch.no_grad():
        net.deblur.correction.out.weight.normal_(0, 0.1)  # not the identity it starts as
    seen: list[torch.Tensor] = []
    net.deblur.register_forward_hook(lambda m, args, out: seen.append(args[0]))
    with torch.no_grad():
        assert torch.equal(net(photos), plain(photos)) and not seen  # sharp: as without it, and it never runs
        x = torch.cat([photos, blurred])
        out = net(x)
        assert len(seen) == 1 and torch.equal(seen[0], blurred)  # only the smooth ones
        torch.testing.assert_close(out[2:], plain(net.deblur(blurred)))  # deblurred, then gated as usual
        torch.testing.assert_close(out[:2], plain(photos))
        net.train(), plain.train()  # training (and tracing) run it on every image, share 0 on the sharp ones
        torch.testing.assert_close(net(x), plain(torch.cat([photos, net.deblur(x)[2:]])))  # batch norms: one batch
    assert net.stride == plain.stride


def test_deblur_config_round_trips_old_folders_have_none_and_bad_ranges_are_refused(tmp_path):
    torch.manual_seed(0)
    defense = ReconstructiveDefense(
        arch="routed", **SMALL, deblur_width=4, deblur_depth=2, deblur_sharpness_range=[0.03, 0.08]
    )
    defense.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert (config["deblur_width"], config["deblur_depth"], config["deblur_sharpness_range"]) == (4, 2, [0.03, 0.08])
    loaded = ReconstructiveDefense.from_pretrained(tmp_path)
    assert loaded.purifier_config == defense.purifier_config
    assert loaded.autoencoder.deblur_range == (0.03, 0.08)
    x = torch.rand(2, 3, 16, 16)
    assert torch.equal(loaded(x), defense(x))
    assert ReconstructiveDefense(arch="routed", **SMALL).autoencoder.deblur is None  # folders without the key
    for bad in ([0.1, 0.05], [0.1], [-0.1, 0.2], [0.1, 9], "0.1,0.2"):
        with pytest.raises(ValueError, match=r"deblur_sharpness_range=.*: expected null or two numbers"):
            PurifierConfig(arch="routed", deblur_sharpness_range=bad).validate()
    with pytest.raises(ValueError, match=r"deblur_depth=0"):
        PurifierConfig(arch="routed", deblur_depth=0).validate()


def test_compose_routed_puts_a_deblurring_purifier_in_bit_exactly():
    from test_scripts import load_script

    module = load_script("compose_routed")
    torch.manual_seed(0)
    routed, small = ReconstructiveDefense(arch="routed", **SMALL), ReconstructiveDefense(widths=[4, 2])
    deblur = ReconstructiveDefense(arch="residual", width=4, depth=2)
    with torch.no_grad():
        for p in deblur.parameters():
            p.add_(0.05 * torch.randn_like(p))
    composed = module.compose(routed, small, routed, deblur=deblur, deblur_sharpness_range=(0.02, 0.09))
    hyper = composed.hyperparameters
    assert (hyper["deblur_width"], hyper["deblur_depth"], hyper["deblur_sharpness_range"]) == (4, 2, [0.02, 0.09])
    state = composed.autoencoder.state_dict()
    assert all(torch.equal(v, state["deblur." + k]) for k, v in deblur.autoencoder.state_dict().items())
    again = module.compose(composed, composed, composed, deblur=composed)  # the deblurring part of a routed folder
    assert all(torch.equal(v, again.state_dict()[k]) for k, v in composed.state_dict().items())
    assert module.compose(composed, small, routed).autoencoder.deblur is None  # none unless --deblur names one


def test_the_sharpness_probe_prints_clean_then_each_blur_and_severity(monkeypatch, tmp_path, capsys):
    from test_scripts import load_script

    module = load_script("sharpness_probe")
    photos = _photos(6)
    monkeypatch.setattr(module, "object_test_set", lambda split: [(image, 0) for image in photos])
    out = tmp_path / "rows.json"
    assert module.main(["--limit", "6", "--corruptions", "defocus_blur", "--below", "0.5,9", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [(r["corruption"], r["severity"]) for r in rows] == [("clean", 0)] + [
        ("defocus_blur", s) for s in range(1, 6)
    ]
    medians = [r["p50"] for r in rows]
    assert medians[0] > max(medians[1:]) and medians[1] > medians[5]  # blur lowers it, the strongest most
    assert all(r["below"]["9.0"] == 1.0 for r in rows)  # every image is below a threshold above all
    assert "defocus_blur" in capsys.readouterr().out
    assert all(len(r["ratio"]) == 3 and "touched" not in r for r in rows)
    # --weights: how many crops a defense's deblurring route touches (by sharpness: every one below 7)
    routed = {"arch": "routed", **SMALL, "deblur_sharpness_range": [7.0, 8.0], "deblur_unsharp": [1.0, 2.0]}
    ReconstructiveDefense(**routed).save_pretrained(tmp_path / "deblur")
    argv = ["--limit", "6", "--corruptions", "defocus_blur", "--weights", str(tmp_path / "deblur"), "--json", str(out)]
    assert module.main(argv) == 0
    rows = json.loads(out.read_text())["rows"]
    assert all(r["touched"] == 1.0 and r["mean_share"] == 1.0 for r in rows)
    ReconstructiveDefense(arch="routed", **SMALL).save_pretrained(tmp_path / "plain")
    with pytest.raises(SystemExit):
        module.main(["--weights", str(tmp_path / "plain")])
    with pytest.raises(SystemExit):
        module.main(["--below", "x"])


def test_unsharp_mask_lifts_the_detail_a_blur_weakened_and_leaves_flat_images_alone():
    photos = _photos()
    blurred = corrupt(photos, "gaussian_blur", 2)
    sharpened = unsharp_mask(blurred, 1.0, 2.0)
    assert sharpened.shape == blurred.shape and 0 <= sharpened.min() and sharpened.max() <= 1
    assert (sharpness(sharpened) > sharpness(blurred)).all()
    assert (sharpened - photos).abs().mean() < (blurred - photos).abs().mean()  # closer to the sharp original
    flat = torch.full((1, 3, 9, 9), 0.3)
    torch.testing.assert_close(unsharp_mask(flat, 1.5, 4.0), flat)
    x = torch.rand(1, 3, 2, 5)  # smaller than the kernel: the borders are replicated, no error
    assert unsharp_mask(x, 2.0, 1.0).shape == x.shape


def test_an_unsharp_deblur_has_no_weights_round_trips_and_bad_settings_are_refused(tmp_path):
    torch.manual_seed(0)
    routed = {"arch": "routed", **SMALL, "deblur_sharpness_range": [0.1, 0.2]}
    defense = ReconstructiveDefense(**routed, deblur_unsharp=[1.0, 2.0])
    with torch.no_grad():
        for parameter in defense.autoencoder.gate.parameters():  # a gate that reads its image, not its biases
            parameter.normal_(0, 0.5)
    assert isinstance(defense.autoencoder.deblur, UnsharpMask)
    learned = ReconstructiveDefense(**routed)
    plain = ReconstructiveDefense(arch="routed", **SMALL)
    assert set(defense.state_dict()) == set(plain.state_dict()) != set(learned.state_dict())  # no tensors
    plain.load_state_dict(defense.state_dict())
    defense.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["deblur_unsharp"] == [1.0, 2.0]
    loaded = ReconstructiveDefense.from_pretrained(tmp_path)
    assert loaded.purifier_config == defense.purifier_config
    blurred = corrupt(_photos(2), "defocus_blur", 5)
    assert (sharpness(blurred) < 0.1).all()  # fully in the unsharp mask's share
    with torch.no_grad():
        torch.testing.assert_close(loaded(blurred), plain(unsharp_mask(blurred, 1.0, 2.0)))
        # the gate's reading is of the image the gate sees in forward: deblurred
        torch.testing.assert_close(loaded.gate(blurred), plain.gate(unsharp_mask(blurred, 1.0, 2.0)))
        assert not torch.allclose(loaded.gate(blurred), plain.gate(blurred))
    for bad in ([0, 1], [1, 9], [1], "1,2", [5, 1]):
        with pytest.raises(ValueError, match=r"deblur_unsharp=.*: expected null or two numbers"):
            PurifierConfig(arch="routed", deblur_unsharp=bad).validate()


def test_blur_ratio_reads_about_4_without_pixel_scale_detail_and_low_with_it():
    photos = _photos()  # smooth shapes under a pixel-scale texture
    smooth = corrupt(photos, "gaussian_blur", 5)  # the texture blurred away
    assert (blur_ratio(smooth) > 3.5).all() and (blur_ratio(smooth) < 4.5).all()
    assert (blur_ratio(photos) < 1.0).all()
    noisy = (smooth + 0.05 * torch.randn(smooth.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    assert (blur_ratio(noisy) < blur_ratio(smooth)).all()  # noise puts detail back at the pixel scale
    assert torch.equal(blur_ratio(torch.full((2, 3, 8, 8), 0.4)), torch.zeros(2))  # flat: sharpness 0
    assert torch.equal(blur_ratio(torch.rand(2, 3, 5, 9)), torch.zeros(2))  # too small to pool and measure


def test_the_blur_ratio_range_scales_the_deblur_share_and_round_trips():
    photos = _photos()
    smooth = corrupt(photos, "gaussian_blur", 5)
    x = torch.cat([photos, smooth])
    everything = (7.0, 8.0)  # every image fully by sharpness
    torch.testing.assert_close(deblur_share(x, everything, None), torch.ones(8))
    torch.testing.assert_close(deblur_share(x, everything, (2.5, 3.0)), torch.tensor([0.0] * 4 + [1.0] * 4))
    ratio = blur_ratio(smooth)
    torch.testing.assert_close(deblur_share(smooth, everything, (0.0, 8.0)), ratio / 8)
    config = PurifierConfig(arch="routed", deblur_sharpness_range=everything, deblur_ratio_range=[2.5, 3.0])
    assert config.validate().deblur_ratio_range == (2.5, 3.0)
    assert PurifierConfig.from_dict(config.as_dict()) == config
    net = RoutedPurifier(
        **SMALL, deblur_sharpness_range=everything, deblur_ratio_range=(2.5, 3.0), deblur_unsharp=(1.0, 2.0)
    )
    plain = RoutedPurifier(**SMALL).eval()
    plain.load_state_dict(net.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(net.eval()(x), plain(torch.cat([photos, unsharp_mask(smooth, 1.0, 2.0)])))
    with pytest.raises(ValueError, match=r"deblur_ratio_range=.*: expected null or two numbers"):
        PurifierConfig(arch="routed", deblur_ratio_range=[3.0, 2.5]).validate()


def test_eager_measures_skip_what_cannot_change_a_share_or_an_image_and_give_the_dense_values(monkeypatch):
    from recondefense.levels import restore_black_point, restore_contrast

    photos = _photos()
    smooth = corrupt(photos, "gaussian_blur", 5)
    noisy = (smooth + 0.05 * torch.randn(smooth.shape, generator=torch.Generator().manual_seed(1))).clamp(0, 1)
    x = torch.cat([photos, smooth, noisy])
    sharp = sharpness(x)
    cut = (float(sharp[:4].min()) + float(sharp[4:8].max())) / 2  # the sharp photos above, the blurred ones below
    for ratio_range in ((2.5, 3.0), (0.0, 8.0)):
        dense = deblur_share(x, (cut - 1e-3, cut), ratio_range, always=True)
        torch.testing.assert_close(deblur_share(x, (cut - 1e-3, cut), ratio_range, always=False), dense)
        assert torch.equal(dense[:4], torch.zeros(4)) and (dense[4:8] > 0).all()
    assert torch.equal(deblur_share(photos, (cut - 1e-3, cut), (2.5, 3.0), always=False), torch.zeros(4))
    # a batch with nothing to stretch or lower comes back as the very tensor (eager), with the dense values
    assert restore_contrast(photos, 0.01, 0.2) is photos
    assert restore_black_point(photos, 0.9) is photos
    monkeypatch.setattr("recondefense.levels.is_tracing", lambda images=None: True)  # the dense formulas, as traced
    dense = restore_contrast(photos, 0.01, 0.2), restore_black_point(photos, 0.9)
    assert all(out is not photos and torch.equal(out, photos) for out in dense)


def test_a_routed_purifier_prepares_channels_last_input_as_the_usual_layout_and_keeps_its_format():
    photos = _photos()
    x = torch.cat([photos, corrupt(photos, "gaussian_blur", 5), corrupt(photos, "contrast", 4)])
    net = RoutedPurifier(
        **SMALL,
        contrast_floor=0.1,
        deblur_sharpness_range=(7.0, 8.0),
        deblur_ratio_range=(2.5, 3.0),
        deblur_unsharp=(1.0, 2.0),
    ).eval()
    with torch.no_grad():
        usual = net.prepare(x)
        last = net.prepare(x.contiguous(memory_format=torch.channels_last))
        assert last.is_contiguous(memory_format=torch.channels_last) and usual.is_contiguous()
        torch.testing.assert_close(last, usual, atol=1e-6, rtol=0)
        assert not torch.equal(usual[4:], x[4:])  # the blurred ones deblurred, the washed-out ones stretched
        torch.testing.assert_close(net(x.contiguous(memory_format=torch.channels_last)), net(x), atol=1e-5, rtol=0)


def test_impulse_fraction_reads_salt_and_pepper_and_remove_impulses_undoes_it():
    from recondefense.levels import impulse_fraction, remove_impulses

    photos = _photos()
    clipped = photos.clone()
    clipped[..., 10:30, 20:60] = 1.0  # a clipped highlight: a run of 1s, not isolated dots
    clipped[..., 50:60, :] = 0.0
    assert (impulse_fraction(clipped) < 0.005).all()
    # a small perturbation leaves scattered values at 0 and 1 inside the clipped runs: not dots (the margin)
    signs = torch.randn(clipped.shape, generator=torch.Generator().manual_seed(2)).sign()
    perturbed = (clipped + 0.01 * signs).clamp(0, 1)
    assert (impulse_fraction(perturbed, margin=0.0) > 0.02).all() and (impulse_fraction(perturbed) == 0).all()
    for amount in (0.03, 0.27):  # ImageNet-C's severities 1 and 5
        noisy = corrupt(
            clipped, "impulse_noise", 1 if amount == 0.03 else 5, generator=torch.Generator().manual_seed(0)
        )
        fraction = impulse_fraction(noisy)
        assert ((fraction > 0.6 * amount) & (fraction < 1.2 * amount)).all()
        restored = remove_impulses(noisy)
        kept = 0.1 if amount == 0.03 else 0.25  # the fine random texture under dense dots is not all recovered
        assert ((restored - clipped) ** 2).mean() < kept * ((noisy - clipped) ** 2).mean()
    assert torch.equal(remove_impulses(photos), photos)  # no value exactly 0 or 1: nothing changed
    inside = torch.full((1, 1, 9, 9), 1.0)
    inside[..., 4, 4] = 0.0  # a pepper dot inside a highlight becomes the highlight
    assert torch.equal(remove_impulses(inside), torch.ones(1, 1, 9, 9))
    assert torch.equal(impulse_fraction(torch.rand(2, 3, 8, 2)), torch.zeros(2))


def test_a_routed_purifier_removes_impulses_before_the_gate_only_where_the_fraction_says_and_round_trips(tmp_path):
    from recondefense.levels import clean_impulses, impulse_fraction, impulse_share, remove_impulses

    photos = _photos()
    noisy = corrupt(photos, "impulse_noise", 2, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(impulse_share(noisy, (0.0, 1.0)), impulse_fraction(noisy))
    assert torch.equal(impulse_share(torch.cat([photos, noisy]), (0.01, 0.02)), torch.tensor([0.0] * 4 + [1.0] * 4))
    smooth = corrupt(photos, "gaussian_blur", 2)  # a photo without the random texture's own noise level
    gaussian = corrupt(smooth, "gaussian_noise", 5, generator=torch.Generator().manual_seed(0))
    assert (impulse_fraction(gaussian) > 0.02).all()  # its clipped values read as dots too ...
    both = torch.cat([corrupt(smooth, "impulse_noise", 2, generator=torch.Generator().manual_seed(0)), gaussian])
    quiet = impulse_share(both, (0.01, 0.02), (0.05, 0.07))
    assert torch.equal(quiet, torch.tensor([1.0] * 4 + [0.0] * 4))  # ... but stay noisy once they are removed
    torch.testing.assert_close(impulse_share(both, (0.01, 0.02), (0.05, 0.07), always=False), quiet)
    # clean_impulses: the same share, the removal run once for the check and the output, where the fraction says
    mixed = torch.cat([photos[:2], both])
    share = impulse_share(mixed, (0.01, 0.02), (0.05, 0.07))
    expected = mixed + share.view(-1, 1, 1, 1) * (remove_impulses(mixed) - mixed)
    for always in (True, False):
        with mock.patch("recondefense.levels.remove_impulses", wraps=remove_impulses) as removal:
            cleaned, dots = clean_impulses(mixed, (0.01, 0.02), (0.05, 0.07), always)
        assert torch.equal(dots, share) and torch.equal(cleaned, expected)
        assert [len(call.args[0]) for call in removal.call_args_list] == [10 if always else 8]
    assert clean_impulses(photos, (0.01, 0.02), (0.05, 0.07), always=False)[0] is photos
    net = RoutedPurifier(**SMALL, impulse_range=(0.01, 0.02)).eval()
    plain = RoutedPurifier(**SMALL).eval()
    plain.load_state_dict(net.state_dict())
    with torch.no_grad():
        assert torch.equal(net.prepare(photos), photos)  # clean: exactly as it came
        torch.testing.assert_close(net.prepare(noisy), remove_impulses(noisy))
        # the gate reads the filter's traces as an attack's: a cleaned image passes it by its share (here all)
        torch.testing.assert_close(net(noisy), remove_impulses(noisy))
        assert torch.equal(net.gate_value(noisy), torch.zeros(4))
        torch.testing.assert_close(net(photos), plain(photos))  # no dots: the gate decides as without the step
        torch.testing.assert_close(net.gate_value(photos), plain.gate_value(photos))
    defense = ReconstructiveDefense(arch="routed", **SMALL, impulse_range=[0.01, 0.02])
    defense.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["impulse_range"] == [0.01, 0.02]
    assert ReconstructiveDefense.from_pretrained(tmp_path).purifier_config.impulse_range == (0.01, 0.02)
    for key in ("impulse_range", "impulse_noise_range"):
        for bad in ([0.02, 0.01], [0.5, 1.5], [0.1]):
            with pytest.raises(ValueError, match=rf"{key}=.*: expected null or two numbers low < high in \[0, 1\]"):
                PurifierConfig(arch="routed", **{key: bad}).validate()
