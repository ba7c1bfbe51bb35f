#include "fedpp/codec/kashin.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include "fedpp/codec/hadamard.hpp"
#include "fedpp/codec/simd.hpp"

namespace fedpp::codec {

int64_t kashin_dim(int64_t d) {
  int64_t n = next_pow2(d);
  if (static_cast<double>(d) / static_cast<double>(n) > 0.85) n *= 2;
  return n;
}

FEDPP_CODEC_KERNEL
void kashin_encode(const float* x, int64_t d, uint64_t sign_seed, const KashinParams& p,
                   float* coefs) {
  const int64_t n = kashin_dim(d);
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(n)));
  std::vector<float> residual(x, x + d), tmp(n);
  std::fill(coefs, coefs + n, 0.0f);

  double sq = 0.0;
  for (int64_t i = 0; i < d; ++i) sq += static_cast<double>(x[i]) * x[i];
  double clip = std::sqrt(sq / (p.delta * static_cast<double>(d)));

  for (int it = 0; it < p.iterations; ++it) {
    // Coefficients of the residual: the frame's adjoint.
    signed_pad(residual.data(), d, n, sign_seed, tmp.data());
    fwht(tmp.data(), n, scale);
    if (it + 1 == p.iterations) {  // unclipped: the representation becomes exact
      for (int64_t i = 0; i < n; ++i) coefs[i] += tmp[i];
      break;
    }
    const float m = static_cast<float>(clip);
    for (int64_t i = 0; i < n; ++i) {
      tmp[i] = std::min(m, std::max(-m, tmp[i]));
      coefs[i] += tmp[i];
    }
    // Subtract the clipped coefficients' reconstruction from the residual.
    fwht(tmp.data(), n, scale);
    add_signed(tmp.data(), d, sign_seed, -1.0f, residual.data());
    clip *= p.eta;
  }
}

}  // namespace fedpp::codec
