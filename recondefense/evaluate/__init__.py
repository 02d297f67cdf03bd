"""The paper's Tables 2 and 3, with the adaptive columns a credible evaluation needs.

Rows are defenses (``none``, the baselines, named or local defense weights); columns are attacks:

- ``none``, ``fgsm``, ``pgd``, ``deepfool``: aimed at the classifier alone (the paper's
  defense-oblivious setting, Table 2), then passed through the defense;
- ``pgd-e2e``: the same PGD aimed at the whole defended pipeline: exact gradients through the AE,
  BPDA for non-differentiable baselines, EOT over ``eot_samples`` draws for randomized ones;
- ``autoattack``: torchattacks' AutoAttack through the defended pipeline (when installed).

Also PSNR and SSIM of the defended PGD image against the clean one, and a Table 3 mode
(``--transfer``: the defense trained with one classifier, attacked and evaluated with another).

    recondefense evaluate --tier fashionmnist --limit 500 --markdown table.md --json rows.json

Layout: :mod:`.tiers` (the benchmarks and their attack parameters), :mod:`.run` (the evaluation loops and
the defense factory), :mod:`.report` (markdown and JSON tables), :mod:`.figures` (Figures 1 and 2, the
accuracy-vs-eps curve) and :mod:`.cli` (the command line, which runs the tables in shards, also in several
processes: ``torchrun -m recondefense.evaluate``, :mod:`recondefense.shards`).
"""

from __future__ import annotations

from .attack_table import evaluate

# `X as X`: public names of the old single module, importable from here but outside `__all__` as before
from .cli import main
from .corruption_table import evaluate_corruptions
from .figures import corruption_figure
from .figures import eps_curve as eps_curve
from .figures import save_figures as save_figures
from .figures import short_name as short_name
from .report import format_corruption_markdown, format_markdown
from .run import build_defense
from .tiers import ATTACK_NAMES as ATTACK_NAMES
from .tiers import BASELINES, TIERS, Tier
from .tiers import HELDOUT_GRID as HELDOUT_GRID
from .tiers import OBLIVIOUS as OBLIVIOUS

__all__ = [
    "Tier",
    "TIERS",
    "BASELINES",
    "build_defense",
    "evaluate",
    "evaluate_corruptions",
    "corruption_figure",
    "format_markdown",
    "format_corruption_markdown",
    "main",
]
