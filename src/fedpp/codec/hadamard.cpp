#include "fedpp/codec/hadamard.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "fedpp/codec/random.hpp"
#include "fedpp/codec/simd.hpp"

namespace fedpp::codec {
namespace {

// One butterfly level on two runs of m floats: a, b <- (a + b) s, (a - b) s.
FEDPP_CODEC_INLINE void bfly2(float* __restrict a, float* __restrict b, int64_t m, float s) {
  for (int64_t j = 0; j < m; ++j) {
    const float u = a[j], v = b[j];
    a[j] = (u + v) * s;
    b[j] = (u - v) * s;
  }
}

// Two butterfly levels on four runs of m floats (the runs of a radix-2 pair at stride h, 2h),
// with the same additions, in the same order, as two calls of bfly2.
FEDPP_CODEC_INLINE void bfly4(float* __restrict a, float* __restrict b, float* __restrict c,
                  float* __restrict d, int64_t m, float s) {
  for (int64_t j = 0; j < m; ++j) {
    const float p = a[j] + b[j], q = a[j] - b[j];
    const float r = c[j] + d[j], t = c[j] - d[j];
    a[j] = (p + r) * s;
    b[j] = (q + t) * s;
    c[j] = (p - r) * s;
    d[j] = (q - t) * s;
  }
}

// One butterfly level with stride h over x[0..len).
FEDPP_CODEC_INLINE void radix2(float* x, int64_t len, int64_t h, float s) {
  for (int64_t i = 0; i < len; i += 2 * h) bfly2(x + i, x + i + h, h, s);
}

// Two butterfly levels (strides h and 2h) in one pass over x[0..len).
FEDPP_CODEC_INLINE void radix4(float* x, int64_t len, int64_t h, float s) {
  for (int64_t i = 0; i < len; i += 4 * h)
    bfly4(x + i, x + i + h, x + i + 2 * h, x + i + 3 * h, h, s);
}

// The three levels of stride 1, 2, 4 on each group of 8.
FEDPP_CODEC_INLINE void kernel8_scalar(float* v, float s) {
  const float a0 = v[0] + v[1], a1 = v[0] - v[1], a2 = v[2] + v[3], a3 = v[2] - v[3];
  const float a4 = v[4] + v[5], a5 = v[4] - v[5], a6 = v[6] + v[7], a7 = v[6] - v[7];
  const float b0 = a0 + a2, b1 = a1 + a3, b2 = a0 - a2, b3 = a1 - a3;
  const float b4 = a4 + a6, b5 = a5 + a7, b6 = a4 - a6, b7 = a5 - a7;
  v[0] = (b0 + b4) * s, v[1] = (b1 + b5) * s, v[2] = (b2 + b6) * s, v[3] = (b3 + b7) * s;
  v[4] = (b0 - b4) * s, v[5] = (b1 - b5) * s, v[6] = (b2 - b6) * s, v[7] = (b3 - b7) * s;
}

#if defined(__GNUC__) && !defined(__clang__)
using F16 = float __attribute__((vector_size(64)));
using I16 = int32_t __attribute__((vector_size(64)));

// One level of stride h (1, 2 or 4) on 16 floats: lane i with bit h clear gets x[i] + x[i+h],
// lane i with it set x[i-h] - x[i]: the butterfly's two outputs, each one IEEE operation on the
// same two operands as kernel8_scalar (addition commutes exactly).
FEDPP_CODEC_INLINE void level16(F16& x, const I16& partner, const I16& pick) {
  const F16 t = __builtin_shuffle(x, partner);
  x = __builtin_shuffle(x + t, t - x, pick);
}
#endif

FEDPP_CODEC_INLINE void kernel8(float* x, int64_t len, float s) {
  int64_t i = 0;
#if defined(__GNUC__) && !defined(__clang__)
  // Two groups a step, in vector registers (GCC's generic vectors: one register under AVX-512,
  // four under the baseline's SSE2): the scalar version spends ~26 cycles per group on
  // shuffling single floats.
  const I16 p1 = {1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14};
  const I16 k1 = {0, 17, 2, 19, 4, 21, 6, 23, 8, 25, 10, 27, 12, 29, 14, 31};
  const I16 p2 = {2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13};
  const I16 k2 = {0, 1, 18, 19, 4, 5, 22, 23, 8, 9, 26, 27, 12, 13, 30, 31};
  const I16 p4 = {4, 5, 6, 7, 0, 1, 2, 3, 12, 13, 14, 15, 8, 9, 10, 11};
  const I16 k4 = {0, 1, 2, 3, 20, 21, 22, 23, 8, 9, 10, 11, 28, 29, 30, 31};
  for (; i + 16 <= len; i += 16) {
    F16 v;
    std::memcpy(&v, x + i, sizeof v);
    level16(v, p1, k1);
    level16(v, p2, k2);
    level16(v, p4, k4);
    if (s != 1.0f) v *= s;
    std::memcpy(x + i, &v, sizeof v);
  }
#endif
  for (; i < len; i += 8) kernel8_scalar(x + i, s);
}

// Levels with strides h0 <= h < h1 (powers of two, h1 <= len) over x[0..len); the last level
// also multiplies by s.
FEDPP_CODEC_INLINE void levels(float* x, int64_t len, int64_t h0, int64_t h1, float s) {
  int64_t h = h0;
  if (h == 1 && h1 >= 8) {
    kernel8(x, len, h1 == 8 ? s : 1.0f);
    h = 8;
  }
  while (h < h1) {
    if (h * 4 <= h1) {
      radix4(x, len, h, h * 4 == h1 ? s : 1.0f);
      h *= 4;
    } else {
      radix2(x, len, h, h * 2 == h1 ? s : 1.0f);
      h *= 2;
    }
  }
}

// The levels of strides S, 2S, ..., (R/2)S over R rows of m floats, row r at x + r S (R a power
// of two; the last level also multiplies by s): the levels above a cache block, done on a narrow
// column of every row at once, so that they all run while the column is in L1.
FEDPP_CODEC_INLINE void row_levels(float* x, int64_t rows, int64_t stride, int64_t m, float s) {
  int64_t h = 1;
  while (h < rows) {
    if (h * 4 <= rows) {
      const float sc = h * 4 == rows ? s : 1.0f;
      for (int64_t r = 0; r < rows; r += 4 * h)
        for (int64_t k = r; k < r + h; ++k)
          bfly4(x + k * stride, x + (k + h) * stride, x + (k + 2 * h) * stride,
                x + (k + 3 * h) * stride, m, sc);
      h *= 4;
    } else {
      const float sc = h * 2 == rows ? s : 1.0f;
      for (int64_t r = 0; r < rows; r += 2 * h)
        for (int64_t k = r; k < r + h; ++k) bfly2(x + k * stride, x + (k + h) * stride, m, sc);
      h *= 2;
    }
  }
}

// v[b][j] = -1 if bit j of byte b is set, else +1.
struct SignTable {
  float v[256][8];
  SignTable() {
    for (int b = 0; b < 256; ++b)
      for (int j = 0; j < 8; ++j) v[b][j] = ((b >> j) & 1) ? -1.0f : 1.0f;
  }
};
const SignTable& sign_table() {
  static const SignTable table;
  return table;
}

// Calls f(begin, count, signs) for consecutive blocks of up to 64 indices below d, where
// signs[j] = +-1 is the sign of index begin + j (bit j of stream word begin / 64).
template <class F>
FEDPP_CODEC_INLINE void for_sign_blocks(int64_t d, uint64_t sign_seed, F&& f) {
  const SignTable& table = sign_table();
  float signs[64];
  for (int64_t b = 0; b < d; b += 64) {
    const uint64_t w = stream_word(sign_seed, static_cast<uint64_t>(b) >> 6);
    for (int byte = 0; byte < 8; ++byte)
      std::memcpy(signs + 8 * byte, table.v[(w >> (8 * byte)) & 0xff], sizeof(float) * 8);
    f(b, std::min<int64_t>(64, d - b), signs);
  }
}

}  // namespace

int64_t next_pow2(int64_t d) {
  int64_t n = 1;
  while (n < d) n *= 2;
  return n;
}

FEDPP_CODEC_KERNEL void fwht(float* x, int64_t n, float scale) {
  // Levels of stride < kL1 run block by block in L1, then those < kL2 on the same block while it
  // is in L2 (one pass over memory for both); the levels above kL2 follow. Every element goes
  // through the same additions in the same order as the plain level-by-level transform: only
  // the order in which elements are visited changes, so the result is bit for bit the same.
  constexpr int64_t kL1 = int64_t{1} << 11, kL2 = int64_t{1} << 16;
  if (n <= 1) {
    if (n == 1) x[0] *= scale;
    return;
  }
  const int64_t b2 = std::min(n, kL2), b1 = std::min(n, kL1);
  for (int64_t i = 0; i < n; i += b2) {
    for (int64_t j = i; j < i + b2; j += b1) levels(x + j, b1, 1, b1, n == b1 ? scale : 1.0f);
    if (b2 > kL1) levels(x + i, b2, kL1, b2, n == b2 ? scale : 1.0f);
  }
  if (n <= kL2) return;
  // The levels above kL2: rows of kL2 floats, `rows` of them. Up to 4 rows, one streaming pass
  // (radix 4). With more, the rows are 256 kB apart, so a column of them maps to one cache set
  // and evicts itself: each column (`width` floats of every row; at most 32 kB up to 512 rows)
  // is copied into a contiguous buffer, transformed there in L1 and copied back: one pass over
  // memory for all these levels.
  const int64_t rows = n / kL2;
  if (rows <= 4) {
    levels(x, n, kL2, n, scale);
    return;
  }
  const int64_t width = std::max<int64_t>(16, std::min<int64_t>(256, 4 * kL1 / rows));
  std::vector<float> column(static_cast<size_t>(rows * width));
  float* col = column.data();
  for (int64_t c = 0; c < kL2; c += width) {
    for (int64_t r = 0; r < rows; ++r)
      std::memcpy(col + r * width, x + r * kL2 + c, sizeof(float) * width);
    row_levels(col, rows, width, width, scale);
    for (int64_t r = 0; r < rows; ++r)
      std::memcpy(x + r * kL2 + c, col + r * width, sizeof(float) * width);
  }
}

FEDPP_CODEC_KERNEL
void signed_pad(const float* x, int64_t d, int64_t n, uint64_t sign_seed, float* out) {
  for_sign_blocks(d, sign_seed, [&](int64_t b, int64_t m, const float* s) {
    for (int64_t j = 0; j < m; ++j) out[b + j] = x[b + j] * s[j];
  });
  std::fill(out + d, out + n, 0.0f);
}

FEDPP_CODEC_KERNEL
void add_signed(const float* y, int64_t d, uint64_t sign_seed, float alpha, float* out) {
  for_sign_blocks(d, sign_seed, [&](int64_t b, int64_t m, const float* s) {
    for (int64_t j = 0; j < m; ++j) out[b + j] += alpha * s[j] * y[b + j];
  });
}

void hadamard_forward(const float* x, int64_t d, int64_t n, uint64_t sign_seed, float* out) {
  signed_pad(x, d, n, sign_seed, out);
  fwht(out, n, static_cast<float>(1.0 / std::sqrt(static_cast<double>(n))));
}

FEDPP_CODEC_KERNEL
void hadamard_inverse(float* y, int64_t n, int64_t d, uint64_t sign_seed, float* out) {
  fwht(y, n, static_cast<float>(1.0 / std::sqrt(static_cast<double>(n))));
  for_sign_blocks(d, sign_seed, [&](int64_t b, int64_t m, const float* s) {
    for (int64_t j = 0; j < m; ++j) out[b + j] = y[b + j] * s[j];
  });
}

}  // namespace fedpp::codec
