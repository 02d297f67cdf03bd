"""Shared pytest fixtures and skip conditions."""

from __future__ import annotations

import pytest
import torch

from recondefense.data import FASHION_MNIST_DEBIAN_DIR

needs_fashion_mnist = pytest.mark.skipif(
    not (FASHION_MNIST_DEBIAN_DIR / "t10k-images-idx3-ubyte.gz").is_file(),
    reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist; `make test` does it)",
)


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op thread for a module of tiny inputs (``pytestmark = pytest.mark.usefixtures("one_thread")``):
    it is fastest there, and avoids OpenMP oversubscription on a busy machine (STL's ADMM loop runs hundreds of
    small ops, each of which stalls when another process holds the cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
