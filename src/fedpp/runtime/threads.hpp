// Process settings for training speed: threads for LibTorch and OpenBLAS, and glibc malloc's
// policy for the large, short-lived blocks that tensors are.
//
// Threads: LibTorch 1.13 defaults to one intra-op thread and OpenBLAS starts threads of its own;
// on a small machine the fastest setting measured was `workers` client threads, each with
// `threads` intra-op (OpenMP) threads, OpenBLAS at 1.
//
// Allocator: by default glibc serves a block of 128 KiB or more with mmap and, on free, returns it
// (or the free top of a heap above 128 KiB) to the kernel, so every training step pays page faults
// to zero the same activation and gradient buffers again (bench/README.md has the measured cost:
// most of a ResNet-8 step at batch 64 went to the kernel's page faults). `tune_allocator`
// keeps blocks up to 32 MiB (glibc's largest mmap threshold) in the heap and freed memory mapped
// up to 1 GiB, so steps reuse warm pages. Peak memory is unchanged; memory freed after a peak is
// kept for reuse instead of handed back. Set FEDPP_MALLOC_TUNING=0 to keep glibc's defaults (for
// comparison). Not glibc: no-op.
#pragma once

namespace fedpp {

// OpenBLAS's own thread pool to `n` threads (no-op when OpenBLAS is not the BLAS in use).
void set_blas_threads(int n);
// Intra-op threads for the calling thread (OpenMP's setting is per thread) and BLAS at 1; also
// applies tune_allocator() once per process.
void set_worker_threads(int intra_op);
// The malloc policy above, applied once per process (thread-safe, idempotent). Returns whether it
// is in effect.
bool tune_allocator();

}  // namespace fedpp
