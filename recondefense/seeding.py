"""Per-image seeding: the one rule for the random draws of ``recondefense evaluate`` and ``recondefense certify``.

A random draw that belongs to one image comes from a generator seeded from the run's ``seed``, the image's index in
the test set and the name of what is drawn (its stream), :func:`image_seed`; never from a generator shared by the
run or by a batch. So a cell does not depend on the batch size, on which attacks are given or in which order, on the
caps, on the shards or on the number of processes (``torchrun``):

- ``evaluate``, randomized baselines (``rrp``, ``pd``): image ``i`` of the cell (defense, attack ``a``) draws from
  ``image_seed(seed, i, a)``; the quality column from the streams ``"quality"`` (the purified PGD image) and
  ``"quality-clean"`` (the purified clean image); a corruption cell from ``"corruption:<name>:<severity>"``. The
  generator advances call after call within the cell, so each EOT pass and each PGD step draws afresh (the
  baselines' ``per_image``). A call on another number of images than the cell's
  (AutoAttack's calls on the images it has not broken yet) draws from the defense's own generator, seeded once with
  ``seed``.
- ``certify``: image ``i``'s noise comes from a generator seeded with ``seed * 1_000_003 + i``, and a randomized
  defense in front of the classifier draws from ``image_seed(seed, i, "certify")``.

Still drawn per batch of ``--batch-size`` images (global batches, the same whichever process runs them): the
corruptions' noise of ``evaluate --corruptions`` (one generator per batch, corruption and severity, as the committed
tables were made) and AutoAttack's random starts. Their cells depend on the batch size, never on the number of
processes.
"""

from __future__ import annotations

import hashlib

__all__ = ["image_seed"]


def image_seed(seed: int, index: int, stream: str = "") -> int:
    """The seed of image ``index``'s draws for ``stream`` in a run seeded with ``seed``: 63 bits of a BLAKE2b hash
    of the three (any ints, negative ones too), for ``torch.Generator.manual_seed``."""
    digest = hashlib.blake2b(f"{int(seed)}/{int(index)}/{stream}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1
