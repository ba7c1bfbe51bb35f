#!/usr/bin/env python3
"""The fp32 rate this machine's cores reach on a large matrix product: the practical ceiling for
local training (bench/README.md, "What bounds the side-by-side job's training").

    /usr/bin/python3 bench/sgemm_peak.py [THREADS]    # Debian's python3-torch (OpenBLAS)

Prints the best of 5 timings of ten 2048 x 2048 x 2048 products (2 n^3 flops each), in GFLOP/s.
Run one copy with 1 thread, one with 2, and two 1-thread copies at once: on a machine whose
cores share floating-point units the sum of the last stays near the first.
"""
import sys
import time

import torch

threads = int(sys.argv[1]) if len(sys.argv) > 1 else 1
torch.set_num_threads(threads)
n = 2048
a, b = torch.randn(n, n), torch.randn(n, n)
for _ in range(3):
    torch.mm(a, b)
best = 0.0
for _ in range(5):
    t0, k = time.perf_counter(), 10
    for _ in range(k):
        torch.mm(a, b)
    best = max(best, 2 * n**3 * k / (time.perf_counter() - t0) / 1e9)
print(f"threads {threads}: best sgemm {best:.0f} GFLOP/s")
