// Thread settings for LibTorch and OpenBLAS. LibTorch 1.13 defaults to one intra-op thread and
// OpenBLAS starts threads of its own; on a small machine the fastest setting measured was
// `workers` client threads, each with `threads` intra-op (OpenMP) threads, OpenBLAS at 1.
#pragma once

namespace fedpp {

// OpenBLAS's own thread pool to `n` threads (no-op when OpenBLAS is not the BLAS in use).
void set_blas_threads(int n);
// Intra-op threads for the calling thread (OpenMP's setting is per thread) and BLAS at 1.
void set_worker_threads(int intra_op);

}  // namespace fedpp
