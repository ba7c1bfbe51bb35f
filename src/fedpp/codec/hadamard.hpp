// The randomized Hadamard transform (docs/methods/feddropout.md): x (length d) times random +-1
// signs drawn from a seed, zero-padded to a power of two n >= d, then the fast Walsh-Hadamard
// transform scaled by 1/sqrt(n). The scaled transform is orthonormal and its own inverse, so
// decoding is: transform, keep the first d entries, multiply by the same signs.
// All functions work on caller-owned float buffers; only fwht allocates, for n > 2^18: a column
// buffer of 32 kB (n <= 2^25; 64 bytes per 2^16 elements above). The kernels are compiled for
// AVX-512 and the baseline, with the same results (codec/simd.hpp). Thread-safe: no shared state.
#pragma once
#include <cstdint>

namespace fedpp::codec {

// Smallest power of two >= d (1 for d <= 1).
int64_t next_pow2(int64_t d);

// In-place Walsh-Hadamard transform of x[0..n), n a power of two, every output multiplied by
// `scale` (1/sqrt(n) makes it orthonormal). Cache-blocked iterative butterflies.
void fwht(float* x, int64_t n, float scale);

// out[0..n) = pad_n(signs .* x[0..d)): the frame's input before the transform.
void signed_pad(const float* x, int64_t d, int64_t n, uint64_t sign_seed, float* out);
// out[i] += alpha * sign_i * y[i] for i < d.
void add_signed(const float* y, int64_t d, uint64_t sign_seed, float alpha, float* out);

// out[0..n) = H_n pad_n(signs .* x) / sqrt(n).
void hadamard_forward(const float* x, int64_t d, int64_t n, uint64_t sign_seed, float* out);
// out[0..d) = signs .* (H_n y / sqrt(n))[0..d). y (length n) is used as scratch and clobbered.
// Inverts hadamard_forward, and reconstructs from Kashin coefficients (same frame).
void hadamard_inverse(float* y, int64_t n, int64_t d, uint64_t sign_seed, float* out);

}  // namespace fedpp::codec
