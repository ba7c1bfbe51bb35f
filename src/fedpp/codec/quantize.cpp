#include "fedpp/codec/quantize.hpp"

#include <algorithm>
#include <cmath>

#include "fedpp/codec/random.hpp"

namespace fedpp::codec {
namespace {

// Rounds v (in [0, top] up to rounding) down or up with P(up) = v - floor(v), u in [0, 1).
// v >= 0, so truncation is floor (and avoids a libm call without SSE4.1).
template <class T>
inline uint16_t round_random(T v, T u, int32_t top) {
  const auto f = static_cast<int32_t>(std::min(v, static_cast<T>(top)));
  const int32_t c = f + (u < v - static_cast<T>(f) ? 1 : 0);
  return static_cast<uint16_t>(std::min(c, top));
}

// Runs f(i, u) for every i < n with u a uniform float in [0, 1) (24 bits; two per word).
template <class F>
void with_dither(int64_t n, uint64_t seed, F&& f) {
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

QuantRange value_range(const float* x, int64_t n) {
  float lo = x[0], hi = x[0];
  for (int64_t i = 1; i < n; ++i) {
    lo = std::min(lo, x[i]);
    hi = std::max(hi, x[i]);
  }
  return {lo, hi};
}

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
