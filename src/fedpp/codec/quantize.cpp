#include "fedpp/codec/quantize.hpp"

#include <algorithm>
#include <cmath>

#include "fedpp/codec/random.hpp"
#include "fedpp/codec/simd.hpp"

namespace fedpp::codec {
namespace {

// Rounds v (in [0, top] up to rounding) down or up with P(up) = v - floor(v), u in [0, 1).
// v >= 0, so truncation is floor (and avoids a libm call without SSE4.1).
template <class T>
FEDPP_CODEC_INLINE uint16_t round_random(T v, T u, int32_t top) {
  const auto f = static_cast<int32_t>(std::min(v, static_cast<T>(top)));
  const int32_t c = f + (u < v - static_cast<T>(f) ? 1 : 0);
  return static_cast<uint16_t>(std::min(c, top));
}

// Runs f(i, u) for every i < n with u a uniform float in [0, 1) (24 bits; two per word).
template <class F>
FEDPP_CODEC_INLINE void with_dither(int64_t n, uint64_t seed, F&& f) {
  constexpr float kUnit = 1.0f / 16777216.0f;
  int64_t i = 0;
  for (uint64_t w = 0; i + 1 < n; ++w, i += 2) {
    const uint64_t r = stream_word(seed, w);
    f(i, static_cast<float>(r >> 40) * kUnit);
    f(i + 1, static_cast<float>((r >> 8) & 0xffffff) * kUnit);
  }
  if (i < n)
    f(i, static_cast<float>(stream_word(seed, static_cast<uint64_t>(i) / 2) >> 40) * kUnit);
}

}  // namespace

FEDPP_CODEC_KERNEL QuantRange value_range(const float* x, int64_t n) {
  // 16 running minima and maxima (one vector register each) in place of one. The minimum and
  // maximum of finite floats do not depend on the order of the comparisons, except for which
  // zero is kept when both +0 and -0 occur: that case is settled afterwards as the one-at-a-time
  // loop settles it (the first zero in x), so the bytes sent never depend on the vector width.
  constexpr int64_t kLanes = 16;
  float lo[kLanes], hi[kLanes];
  for (int64_t j = 0; j < kLanes; ++j) lo[j] = hi[j] = x[0];
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int64_t j = 0; j < kLanes; ++j) {
      lo[j] = x[i + j] < lo[j] ? x[i + j] : lo[j];
      hi[j] = x[i + j] > hi[j] ? x[i + j] : hi[j];
    }
  QuantRange r{x[0], x[0]};
  for (int64_t j = 0; j < kLanes; ++j) {
    r.lo = lo[j] < r.lo ? lo[j] : r.lo;
    r.hi = hi[j] > r.hi ? hi[j] : r.hi;
  }
  for (; i < n; ++i) {
    r.lo = x[i] < r.lo ? x[i] : r.lo;
    r.hi = x[i] > r.hi ? x[i] : r.hi;
  }
  for (float* end : {&r.lo, &r.hi})
    if (*end == 0.0f) *end = *std::find(x, x + n, 0.0f);
  return r;
}

FEDPP_CODEC_KERNEL
void quantize(const float* x, int64_t n, int q, QuantRange r, uint64_t quant_seed,
              uint16_t* codes) {
  const int32_t top = (int32_t{1} << q) - 1;
  const double range = static_cast<double>(r.hi) - r.lo;
  if (range >= 1e-30 && range <= 1e38) {  // float arithmetic cannot overflow or lose the range
    const float scale = static_cast<float>(top / range), lo = r.lo;
    with_dither(n, quant_seed, [&](int64_t i, float u) {
      codes[i] = round_random((x[i] - lo) * scale, u, top);
    });
  } else {
    const double scale = top / range, lo = r.lo;
    with_dither(n, quant_seed, [&](int64_t i, float u) {
      codes[i] = round_random<double>((x[i] - lo) * scale, u, top);
    });
  }
}

FEDPP_CODEC_KERNEL
void dequantize(const uint16_t* codes, int64_t n, int q, QuantRange r, float* out) {
  const uint32_t top = (uint32_t{1} << q) - 1;
  const double step = (static_cast<double>(r.hi) - r.lo) / top;
  if (std::abs(r.lo) + step * top <= 1e38) {
    const float lo = r.lo, s = static_cast<float>(step);
    for (int64_t i = 0; i < n; ++i) out[i] = lo + static_cast<float>(codes[i]) * s;
  } else {
    for (int64_t i = 0; i < n; ++i) out[i] = static_cast<float>(r.lo + codes[i] * step);
  }
}

}  // namespace fedpp::codec
