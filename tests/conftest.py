"""Shared pytest fixtures and skip conditions."""

from __future__ import annotations

import pytest

from recondefense.data import FASHION_MNIST_DEBIAN_DIR

needs_fashion_mnist = pytest.mark.skipif(
    not (FASHION_MNIST_DEBIAN_DIR / "t10k-images-idx3-ubyte.gz").is_file(),
    reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist; `make test` does it)",
)
