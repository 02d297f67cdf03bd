"""``recondefense.train``: the adversarial-triplet training loop (paper Algorithm 1).

Run it as ``python -m recondefense.train --help``, ``recondefense train --help``, under
``torchrun --nproc_per_node N -m recondefense.train ...``, or call :func:`train` with a
:class:`TrainConfig`.
"""

from __future__ import annotations

from .config import TrainConfig
from .fit import fit
from .loop import TrainingInterrupted, train, validate

__all__ = ["TrainConfig", "TrainingInterrupted", "fit", "train", "validate"]
