#include "fedpp/codec/hadamard.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "fedpp/codec/random.hpp"

namespace fedpp::codec {
namespace {

// One butterfly level with stride h over x[0..len).
void radix2(float* x, int64_t len, int64_t h, float s) {
  for (int64_t i = 0; i < len; i += 2 * h) {
    float* __restrict a = x + i;
    float* __restrict b = a + h;
    for (int64_t j = 0; j < h; ++j) {
      const float u = a[j], v = b[j];
      a[j] = (u + v) * s;
      b[j] = (u - v) * s;
    }
  }
}

// Two butterfly levels (strides h and 2h) in one pass over x[0..len).
void radix4(float* x, int64_t len, int64_t h, float s) {
  for (int64_t i = 0; i < len; i += 4 * h) {
    float* __restrict a = x + i;
    float* __restrict b = a + h;
    float* __restrict c = b + h;
    float* __restrict d = c + h;
    for (int64_t j = 0; j < h; ++j) {
      const float p = a[j] + b[j], q = a[j] - b[j];
      const float r = c[j] + d[j], t = c[j] - d[j];
      a[j] = (p + r) * s;
      b[j] = (q + t) * s;
      c[j] = (p - r) * s;
      d[j] = (q - t) * s;
    }
  }
}

// The three levels of stride 1, 2, 4 on each group of 8.
void kernel8(float* x, int64_t len, float s) {
  for (int64_t i = 0; i < len; i += 8) {
    float* v = x + i;
    const float a0 = v[0] + v[1], a1 = v[0] - v[1], a2 = v[2] + v[3], a3 = v[2] - v[3];
    const float a4 = v[4] + v[5], a5 = v[4] - v[5], a6 = v[6] + v[7], a7 = v[6] - v[7];
    const float b0 = a0 + a2, b1 = a1 + a3, b2 = a0 - a2, b3 = a1 - a3;
    const float b4 = a4 + a6, b5 = a5 + a7, b6 = a4 - a6, b7 = a5 - a7;
    v[0] = (b0 + b4) * s, v[1] = (b1 + b5) * s, v[2] = (b2 + b6) * s, v[3] = (b3 + b7) * s;
    v[4] = (b0 - b4) * s, v[5] = (b1 - b5) * s, v[6] = (b2 - b6) * s, v[7] = (b3 - b7) * s;
  }
}

// Levels with strides h0 <= h < h1 (powers of two, h1 <= len) over x[0..len); the last level
// also multiplies by s.
void levels(float* x, int64_t len, int64_t h0, int64_t h1, float s) {
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
void for_sign_blocks(int64_t d, uint64_t sign_seed, F&& f) {
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

void fwht(float* x, int64_t n, float scale) {
  // Levels of stride < kL1 run block by block in L1, those < kL2 in L2, the rest stream.
  constexpr int64_t kL1 = int64_t{1} << 11, kL2 = int64_t{1} << 16;
  if (n <= 1) {
    if (n == 1) x[0] *= scale;
    return;
  }
  const int64_t b1 = std::min(n, kL1);
  for (int64_t i = 0; i < n; i += b1) levels(x + i, b1, 1, b1, n == b1 ? scale : 1.0f);
  if (n <= kL1) return;
  const int64_t b2 = std::min(n, kL2);
  for (int64_t i = 0; i < n; i += b2) levels(x + i, b2, kL1, b2, n == b2 ? scale : 1.0f);
  if (n <= kL2) return;
  levels(x, n, kL2, n, scale);
}

void signed_pad(const float* x, int64_t d, int64_t n, uint64_t sign_seed, float* out) {
  for_sign_blocks(d, sign_seed, [&](int64_t b, int64_t m, const float* s) {
    for (int64_t j = 0; j < m; ++j) out[b + j] = x[b + j] * s[j];
  });
  std::fill(out + d, out + n, 0.0f);
}

void add_signed(const float* y, int64_t d, uint64_t sign_seed, float alpha, float* out) {
  for_sign_blocks(d, sign_seed, [&](int64_t b, int64_t m, const float* s) {
    for (int64_t j = 0; j < m; ++j) out[b + j] += alpha * s[j] * y[b + j];
  });
}

void hadamard_forward(const float* x, int64_t d, int64_t n, uint64_t sign_seed, float* out) {
  signed_pad(x, d, n, sign_seed, out);
  fwht(out, n, static_cast<float>(1.0 / std::sqrt(static_cast<double>(n))));
}

void hadamard_inverse(float* y, int64_t n, int64_t d, uint64_t sign_seed, float* out) {
  fwht(y, n, static_cast<float>(1.0 / std::sqrt(static_cast<double>(n))));
  for_sign_blocks(d, sign_seed, [&](int64_t b, int64_t m, const float* s) {
    for (int64_t j = 0; j < m; ++j) out[b + j] = y[b + j] * s[j];
  });
}

}  // namespace fedpp::codec
