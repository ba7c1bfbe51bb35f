// Stochastic uniform quantisation to q bits (q = 1..16), as in docs/methods/feddropout.md: the range
// [lo, hi] of the vector is cut into 2^q - 1 equal steps and each value is rounded to one of its
// two neighbouring levels at random, up with probability equal to its fractional position, so
// the dequantised value is an unbiased estimate of the input. The dither is drawn from a seed.
#pragma once
#include <cstdint>

namespace fedpp::codec {

struct QuantRange {
  float lo = 0.0f;
  float hi = 0.0f;
};

// Minimum and maximum of x[0..n) (n >= 1, all finite).
QuantRange value_range(const float* x, int64_t n);

// codes[i] in [0, 2^q - 1] for x[i] in [r.lo, r.hi], r.hi > r.lo (both finite).
void quantize(const float* x, int64_t n, int q, QuantRange r, uint64_t quant_seed,
              uint16_t* codes);

// out[i] = r.lo + codes[i] * (r.hi - r.lo) / (2^q - 1).
void dequantize(const uint16_t* codes, int64_t n, int q, QuantRange r, float* out);

}  // namespace fedpp::codec
