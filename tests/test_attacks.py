"""recondefense.attacks: torchattacks as oracle, plus the contract every attack shares."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from recondefense import Defended
from recondefense.attacks import BPDA, EOT, FGSM, PGD, Attack, DeepFool, adaptive_model
from recondefense.transform import PixelDefense

torchattacks = pytest.importorskip("torchattacks")

CLASSES = 5


class SmallNet(nn.Module):
    """Fixed small CNN on (N, 3, 12, 12) pixels in [0, 1], with batch norm and dropout (mode matters)."""

    def __init__(self, classes: int = CLASSES, seed: int = 0) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1, stride=2)
        self.drop = nn.Dropout(0.5)
        self.fc = nn.Linear(8 * 6 * 6, classes)
        with torch.no_grad():
            for param in self.parameters():
                param.copy_(torch.randn(param.shape, generator=generator) * 0.3)
            self.bn.running_mean.uniform_(-0.2, 0.2, generator=generator)
            self.bn.running_var.uniform_(0.5, 1.5, generator=generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.bn(self.conv1(x)).relu()
        h = self.conv2(h).relu().flatten(1)
        return self.fc(self.drop(h))


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def model() -> nn.Module:
    return SmallNet().eval()


@pytest.fixture(scope="module")
def data(model: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    images = torch.rand(16, 3, 12, 12, generator=generator)
    with torch.no_grad():
        labels = model(images).argmax(1)
    labels[:3] = (labels[:3] + 1) % CLASSES  # three images start misclassified
    return images, labels


ATTACKS = {
    "fgsm": lambda m: FGSM(m, eps=0.03),
    "pgd": lambda m: PGD(m, eps=0.03, alpha=0.01, steps=5),
    "pgd-random": lambda m: PGD(m, eps=0.03, alpha=0.01, steps=5, random_start=True),
    "deepfool": lambda m: DeepFool(m, steps=10),
    "deepfool-top3": lambda m: DeepFool(m, steps=10, candidates=3),
    "deepfool-chunked": lambda m: DeepFool(m, steps=10, grad_chunk=3),
    "pgd-eot": lambda m: PGD(EOT(m, 2), eps=0.03, alpha=0.01, steps=3),
}
LINF = {"fgsm": 0.03, "pgd": 0.03, "pgd-random": 0.03, "pgd-eot": 0.03}


# ------------------------------------------------------------------ torchattacks as the oracle
@pytest.mark.parametrize("eps", [0.01, 0.05])
def test_fgsm_equals_torchattacks(model, data, eps):
    images, labels = data
    ours = FGSM(model, eps=eps)(images, labels)
    theirs = torchattacks.FGSM(model, eps=eps)(images, labels)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-6)


@pytest.mark.parametrize("eps, alpha, steps", [(0.01, 0.004, 10), (0.05, 0.02, 4)])
def test_pgd_equals_torchattacks(model, data, eps, alpha, steps):
    images, labels = data
    ours = PGD(model, eps=eps, alpha=alpha, steps=steps)(images, labels)
    theirs = torchattacks.PGD(model, eps=eps, alpha=alpha, steps=steps, random_start=False)(images, labels)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-6)


def test_deepfool_matches_torchattacks(model, data):
    """Same fooling rate (or higher) and median L2 within 5% of torchattacks on the same images.

    torchattacks applies the overshoot per step and no 1e-4 push, so it can stall exactly on a
    boundary without crossing it; ours (the original paper's update) then still fools the image.
    The L2 comparison is over the images both fooled. Steps are capped at 10 to keep the test fast.
    """
    images, labels = data
    attacked = ~DeepFool(model).run(images, labels).misclassified
    ours = DeepFool(model, steps=10, overshoot=0.02)(images, labels)
    theirs = torchattacks.DeepFool(model, steps=10, overshoot=0.02)(images, labels)
    with torch.no_grad():
        fooled = model(ours).argmax(1) != labels
        fooled_ta = model(theirs).argmax(1) != labels
    rate, rate_ta = fooled[attacked].float().mean().item(), fooled_ta[attacked].float().mean().item()
    assert rate >= 0.95 * rate_ta and rate_ta >= 0.6
    both = attacked & fooled & fooled_ta
    l2 = (ours - images)[both].flatten(1).norm(dim=1).median().item()
    l2_ta = (theirs - images)[both].flatten(1).norm(dim=1).median().item()
    assert l2 == pytest.approx(l2_ta, rel=0.05)


# ------------------------------------------------------------------ the shared contract
@pytest.mark.parametrize("name", ATTACKS)
def test_range_shape_and_eps(model, data, name):
    images, labels = data
    adv = ATTACKS[name](model)(images, labels)
    assert adv.shape == images.shape and adv.dtype == images.dtype
    assert adv.min() >= 0 and adv.max() <= 1
    assert not adv.requires_grad
    if name in LINF:
        assert (adv - images).abs().max() <= LINF[name] + 1e-6


@pytest.mark.parametrize("name", ATTACKS)
def test_model_modes_flags_and_grads_restored(data, name):
    images, labels = data
    net = SmallNet().train()
    net.bn.eval()  # a submodule deliberately in eval: must stay so
    net.fc.weight.requires_grad_(False)
    ATTACKS[name](net)(images, labels)
    assert net.training and net.drop.training and not net.bn.training
    assert not net.fc.weight.requires_grad and net.conv1.weight.requires_grad
    assert all(param.grad is None for param in net.parameters())


@pytest.mark.parametrize("name", ["fgsm", "pgd", "deepfool"])
def test_single_image_uint8_and_labels_none(model, data, name):
    images, labels = data
    attack = ATTACKS[name](model)
    batched = attack(images[3:5], labels[3:5])
    single = attack(images[3], labels[3])
    assert single.shape == images[3].shape
    torch.testing.assert_close(single, batched[0])
    as_uint8 = attack((images[3:5] * 255).round().to(torch.uint8))  # labels=None: model's predictions
    assert as_uint8.dtype == torch.float32 and as_uint8.shape == images[3:5].shape


@pytest.mark.parametrize(
    "images, labels, error",
    [
        (torch.rand(2, 3, 12, 12) * 2 - 0.5, torch.zeros(2, dtype=torch.long), ValueError),
        (torch.rand(2, 3, 12, 12), torch.zeros(3, dtype=torch.long), ValueError),
        (torch.rand(2, 3, 12, 12), torch.zeros(2), TypeError),
        (torch.rand(12, 12), None, ValueError),
    ],
)
def test_bad_inputs_raise(model, images, labels, error):
    with pytest.raises(error):
        FGSM(model)(images, labels)


def test_pgd_at_least_as_strong_as_fgsm(model, data):
    images, labels = data
    with torch.no_grad():
        losses = {
            name: F.cross_entropy(model(attack(images, labels)), labels, reduction="none")
            for name, attack in {"fgsm": FGSM(model, 0.03), "pgd": PGD(model, 0.03, 0.01, 10)}.items()
        }
    assert losses["pgd"].mean() >= losses["fgsm"].mean()
    assert (losses["pgd"] >= losses["fgsm"] - 1e-4).float().mean() >= 0.9


# ------------------------------------------------------------------ DeepFool specifics
def test_deepfool_reports_and_skips_misclassified(model, data):
    images, labels = data
    result = DeepFool(model, steps=50).run(images, labels)
    assert result.misclassified[:3].all() and not result.misclassified[3:].any()
    assert torch.equal(result.adv[:3], images[:3]) and (result.steps[:3] == 0).all()
    assert not result.fooled[:3].any() and result.fooled[3:].all()
    with torch.no_grad():
        assert (model(result.adv[3:]).argmax(1) != labels[3:]).all()


@pytest.mark.parametrize("candidates", [None, 2, 3])
def test_deepfool_batched_equals_one_by_one(model, data, candidates):
    images, labels = data
    attack = DeepFool(model, steps=50, candidates=candidates)
    batched = attack(images, labels)
    one_by_one = torch.stack([attack(image, label) for image, label in zip(images, labels)])
    torch.testing.assert_close(batched, one_by_one, rtol=0, atol=1e-5)


def test_deepfool_grad_chunk_equals_plain(model, data):
    images, labels = data
    torch.testing.assert_close(DeepFool(model, grad_chunk=4)(images, labels), DeepFool(model)(images, labels))


def test_deepfool_rejects_one_candidate(model):
    with pytest.raises(ValueError, match="candidates"):
        DeepFool(model, candidates=1)


@pytest.mark.parametrize("make", [lambda m: PGD(m, targeted=True), lambda m: FGSM(m, targeted=True)])
def test_targeted_attack_needs_labels(model, data, make):
    """Without labels the targets would be the model's own predictions: nothing to attack."""
    with pytest.raises(ValueError, match=r"targeted=True\) needs the target classes: pass labels"):
        make(model)(data[0][:2])
    make(model)(data[0][:2], torch.tensor([1, 2]))  # with targets it runs


@pytest.mark.parametrize(
    "make, error, match",
    [
        (lambda m: PGD(m, eps=float("nan")), ValueError, "eps to be a finite number >= 0, got nan"),
        (lambda m: PGD(m, alpha=float("inf")), ValueError, "alpha to be a finite number"),
        (lambda m: FGSM(m, eps=float("nan")), ValueError, "eps to be a finite number"),
        (lambda m: FGSM(m, eps=-0.1), ValueError, "eps to be a finite number >= 0"),
        (lambda m: DeepFool(m, overshoot=float("nan")), ValueError, "overshoot to be a finite number"),
        (lambda m: PGD(m, eps="0.03"), TypeError, "expected eps as a number"),
        (lambda m: PGD(m, steps=2.7), TypeError, r"expected steps as an integer, got 2.7 \(float\)"),
        (lambda m: PGD(m, steps=-1), ValueError, "expected steps >= 0"),
        (lambda m: DeepFool(m, steps=3.0), TypeError, "expected steps as an integer"),
        (lambda m: DeepFool(m, candidates=2.5), TypeError, "expected candidates as an integer"),
        (lambda m: DeepFool(m, grad_chunk=0), ValueError, "expected grad_chunk >= 1"),
        (lambda m: EOT(m, samples=2.7), TypeError, "expected samples as an integer"),
    ],
)
def test_bad_parameters_are_refused(model, make, error, match):
    with pytest.raises(error, match=match):
        make(model)


def test_numpy_and_tensor_parameters_are_accepted(model):
    import numpy as np

    attack = PGD(model, eps=np.float32(0.03), alpha=torch.tensor(0.01), steps=np.int64(3))
    assert (attack.eps, attack.steps) == (pytest.approx(0.03), 3) and type(attack.steps) is int


@pytest.mark.parametrize("name", ["fgsm", "pgd", "deepfool"])
def test_labels_must_have_shape_n_and_be_in_range(model, data, name):
    images = data[0][:4]
    attack = ATTACKS[name](model)
    with pytest.raises(ValueError, match=r"labels of shape \(4,\), one class index per image, got shape \(2, 2\)"):
        attack(images, torch.zeros(2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match=rf"labels in \[0, {CLASSES}\) for a model with {CLASSES} classes, got"):
        attack(images, torch.tensor([0, 1, CLASSES, 2]))
    with pytest.raises(ValueError, match="got labels from -1 to"):
        attack(images, torch.tensor([0, -1, 1, 2]))
    attack(images, torch.tensor([0, 1, CLASSES - 1, 2]))  # the last class is fine
    assert attack(images[0], torch.tensor(1)).shape == images[0].shape  # a scalar for one image


class TupleNet(nn.Module):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.net(x), x


class FlatNet(TupleNet):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)[0]


@pytest.mark.parametrize("name", ["fgsm", "pgd", "deepfool"])
@pytest.mark.parametrize("with_labels", [True, False])
def test_a_model_not_returning_logits_gets_one_clear_error(model, data, name, with_labels):
    images, labels = data[0][:2], data[1][:2]
    labels = labels if with_labels else None
    with pytest.raises(ValueError, match=r"expected the model to return \(2, classes\) logits, got a tuple"):
        ATTACKS[name](TupleNet(model))(images, labels)
    with pytest.raises(ValueError, match=r"logits for 2 image\(s\), got shape \(5,\)"):
        ATTACKS[name](FlatNet(model))(images, labels)


# ------------------------------------------------------------------ adaptive tools
class Quantize(PixelDefense):
    """Non-differentiable test defense (rounding) with a smooth surrogate."""

    differentiable = False

    def purify(self, images: torch.Tensor) -> torch.Tensor:
        return (images * 4).round() / 4

    def surrogate(self, images: torch.Tensor) -> torch.Tensor:
        return images**2


class Noise(PixelDefense):
    """Randomized test defense: a fresh noise draw per call."""

    randomized = True

    def purify(self, images: torch.Tensor) -> torch.Tensor:
        return images + 0.05 * torch.randn_like(images)


class Halve(PixelDefense):
    """Differentiable deterministic test defense."""

    def purify(self, images: torch.Tensor) -> torch.Tensor:
        return images * 0.5 + 0.25


@pytest.mark.parametrize(
    "backward, expected_grad",
    [(None, lambda x: 2 * x), (torch.sin, torch.cos)],
    ids=["surrogate", "explicit"],
)
def test_bpda_value_is_transform_gradient_is_approximation(backward, expected_grad):
    x = torch.rand(2, 3, 8, 8, requires_grad=True)
    bpda = BPDA(Quantize(), backward)
    out = bpda(x)
    assert torch.equal(out, Quantize()(x))
    (grad,) = torch.autograd.grad(out.sum(), x)
    torch.testing.assert_close(grad, expected_grad(x.detach()))


def test_bpda_identity_default_for_plain_module():
    x = torch.rand(2, 3, 4, 4, requires_grad=True)
    (grad,) = torch.autograd.grad((BPDA(nn.Hardtanh(0.2, 0.8))(x) * 3).sum(), x)
    torch.testing.assert_close(grad, torch.full_like(x, 3.0))


def test_eot_one_sample_equals_plain_pgd(model, data):
    images, labels = data
    plain = PGD(model, eps=0.01, alpha=0.004, steps=10)(images, labels)
    eot = PGD(EOT(model, samples=1), eps=0.01, alpha=0.004, steps=10)(images, labels)
    assert torch.equal(eot, plain)


class _Cycling(nn.Module):
    """A 'randomized' model whose draws are known: scales the input by 0.5, 1.0, 1.5 in turn."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net, self.calls = net, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = (0.5, 1.0, 1.5)[self.calls % 3]
        self.calls += 1
        return self.net(x * scale)


def test_eot_gradient_is_mean_of_sample_gradients(model):
    x = torch.rand(2, 3, 12, 12, requires_grad=True)
    (eot_grad,) = torch.autograd.grad(EOT(_Cycling(model), samples=3)(x)[:, 0].sum(), x)
    grads = [torch.autograd.grad(model(x * s)[:, 0].sum(), x)[0] for s in (0.5, 1.0, 1.5)]
    torch.testing.assert_close(eot_grad, torch.stack(grads).mean(0))


@pytest.mark.parametrize(
    "defense, has_bpda, has_eot",
    [(Halve(), False, False), (Quantize(), True, False), (Noise(), False, True)],
    ids=["differentiable", "bpda", "eot"],
)
@pytest.mark.parametrize("normalized", [False, True])
def test_adaptive_model_picks_gradient_path(model, data, defense, has_bpda, has_eot, normalized):
    images, labels = data
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
    if normalized:  # a classifier taking normalized input, wrapped the usual Defended way
        defended = Defended(_Unnormalize(model, mean, std), defense, mean=mean, std=std)
    else:
        defended = Defended(model, defense, mean=None, std=None)
    adaptive = adaptive_model(defended, eot_samples=2)
    modules = list(adaptive.modules())
    assert any(isinstance(m, BPDA) for m in modules) == has_bpda
    assert isinstance(adaptive, EOT) == has_eot
    if not has_eot:  # same forward value as the defended pipeline on pixels
        torch.testing.assert_close(adaptive(images), model(defense(images)))
    adv = PGD(adaptive, eps=0.03, alpha=0.01, steps=3)(images, labels)
    assert (adv - images).abs().max() <= 0.03 + 1e-6


class _Unnormalize(nn.Module):
    """A normalized-input classifier built from a pixel-space one (for the normalized Defended case)."""

    def __init__(self, net: nn.Module, mean, std) -> None:
        super().__init__()
        self.net = net
        self.mean = torch.tensor(mean).view(-1, 1, 1)
        self.std = torch.tensor(std).view(-1, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x * self.std + self.mean)


def test_adaptive_model_bare_defense_needs_classifier(model):
    with pytest.raises(ValueError, match="classifier"):
        adaptive_model(Halve())
    adaptive = adaptive_model(Halve(), model)
    x = torch.rand(2, 3, 12, 12)
    torch.testing.assert_close(adaptive(x), model(Halve()(x)))


def test_end_to_end_pgd_through_defense_beats_oblivious(model, data):
    """Exact gradients through a differentiable defense hurt more than attacking the classifier alone."""
    images, labels = data
    defended = Defended(model, Halve(), mean=None, std=None)
    adaptive = PGD(adaptive_model(defended), eps=0.05, alpha=0.02, steps=10)(images, labels)
    oblivious = PGD(model, eps=0.05, alpha=0.02, steps=10)(images, labels)
    with torch.no_grad():
        loss_adaptive = F.cross_entropy(defended(adaptive), labels)
        loss_oblivious = F.cross_entropy(defended(oblivious), labels)
    assert loss_adaptive >= loss_oblivious


def test_attack_base_is_abstract(model, data):
    with pytest.raises(NotImplementedError):
        Attack(model)(*data)
