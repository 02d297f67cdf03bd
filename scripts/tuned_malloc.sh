# Sourced by the training scripts: glibc's allocator told to keep freed memory (benchmarks/inference.py's
# TUNED_MALLOC; values already in the environment win). Without it every batch's activations are fresh pages from the
# kernel, and a training step on the CPU spends much of its time in page faults.
export MALLOC_MMAP_THRESHOLD_=${MALLOC_MMAP_THRESHOLD_:-33554432}
export MALLOC_TRIM_THRESHOLD_=${MALLOC_TRIM_THRESHOLD_:-4294967296}
export MALLOC_TOP_PAD_=${MALLOC_TOP_PAD_:-1073741824}
