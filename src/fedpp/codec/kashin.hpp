// Kashin's representation (Lyubarskii & Vershynin) in the padded randomized Hadamard frame, as
// in docs/methods/feddropout.md and TensorFlow's tensor_encoding KashinHadamardEncodingStage. The
// frame maps n coefficients to d <= n values by hadamard_inverse (transform, cut, signs); its
// adjoint is hadamard_forward. The representation has n coefficients whose reconstruction is
// exactly x (up to float rounding) and whose largest magnitude is small (about ||x|| / sqrt(n)
// times a constant), which makes the quantisation that follows accurate.
// With the reference's defaults (3 iterations, eta 0.9, delta 1) the gain over the plain
// transform is modest (the largest coefficient drops by a few to 20% on spiky inputs). When d
// is a power of two (n = 2d) the frame's coefficients come in equal pairs [c; c] that clipping
// preserves, so the result is the plain transform's coefficients, each twice, over sqrt(2): no
// gain at twice the size (the reference behaves the same).
#pragma once
#include <cstdint>

namespace fedpp::codec {

struct KashinParams {
  int iterations = 3;  // >= 1; the last iteration is unclipped
  double eta = 0.9;    // clip level shrink per iteration, (0, 1]
  double delta = 1.0;  // initial clip level ||x|| / sqrt(delta * d), > 0
};

// Frame size for vectors of length d >= 1: the next power of two, doubled once more when
// d / n > 0.85 (so the expansion n / d is in about [1.18, 2.35)).
int64_t kashin_dim(int64_t d);

// Writes the n = kashin_dim(d) coefficients of x[0..d) to coefs[0..n).
// Decode with hadamard_inverse(coefs, n, d, sign_seed, out).
void kashin_encode(const float* x, int64_t d, uint64_t sign_seed, const KashinParams& p,
                   float* coefs);

}  // namespace fedpp::codec
