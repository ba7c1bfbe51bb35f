#include "fedpp/codec/subsample.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "fedpp/codec/random.hpp"
#include "fedpp/codec/simd.hpp"

namespace fedpp::codec {
namespace {

// Selection sampling (Knuth's algorithm S): visits i = 0..n-1 and keeps i with probability
// (still needed) / (still left), which yields exactly k positions, all k-subsets equally likely.
// Calls visit(i, j, keep) for every i < n, where j is the number kept before i; branch-free
// in the common case (the keep decision is a coin flip a branch predictor cannot learn).
//
// Position i is kept when r_i < need, where r_i = floor(u_i * left_i) for a 32-bit uniform u_i
// (the low half of stream word i / 2 for even i, the high half for odd i) and left_i = n - i,
// when left_i fits in 32 bits; else r_i is drawn from a fresh 64-bit word. The r_i do not depend
// on what was kept, so they are drawn a block at a time in a loop that vectorises, and only the
// comparison with `need` runs one position at a time.
template <class Visit>
FEDPP_CODEC_INLINE void select(int64_t n, int64_t k, uint64_t seed, Visit&& visit) {
  constexpr int64_t kBlock = 2048;
  uint64_t r[kBlock];
  uint64_t need = static_cast<uint64_t>(k);
  // Blocks start at even i, so word i / 2 is never split between two blocks.
  for (int64_t i0 = 0; i0 < n; i0 += kBlock) {
    const int64_t m = std::min(kBlock, n - i0);
    if (static_cast<uint64_t>(n - i0) <= 0xffffffffULL) {
      for (int64_t t = 0; t < m; ++t) {
        const uint64_t i = static_cast<uint64_t>(i0 + t);
        const uint64_t w = stream_word(seed, i >> 1) >> (32 * (i & 1));
        r[t] = ((w & 0xffffffffULL) * (static_cast<uint64_t>(n) - i)) >> 32;
      }
    } else {
      // n - i0 > 2^32 - 1 (a tensor near the 2^31-element limit padded by Kashin): the draws as
      // defined above, one at a time; `w` is the current word's unused half, as in the 32-bit
      // case.
      uint64_t w = 0;
      for (int64_t t = 0; t < m; ++t) {
        const int64_t i = i0 + t;
        const uint64_t left = static_cast<uint64_t>(n - i);
        if ((i & 1) == 0) w = stream_word(seed, static_cast<uint64_t>(i) >> 1);
        if (left <= 0xffffffffULL) {
          r[t] = ((w & 0xffffffffULL) * left) >> 32;
          w >>= 32;
        } else {
          r[t] = static_cast<uint64_t>(
              (static_cast<unsigned __int128>(stream_word(~seed, static_cast<uint64_t>(i))) *
               left) >>
              64);
        }
      }
    }
    for (int64_t t = 0; t < m; ++t) {
      const bool keep = r[t] < need;
      visit(i0 + t, static_cast<int64_t>(static_cast<uint64_t>(k) - need), keep);
      need -= keep;
    }
  }
}

}  // namespace

int64_t subsample_count(int64_t n, double s) {
  if (n <= 0) return 0;
  const auto k = static_cast<int64_t>(std::llround(s * static_cast<double>(n)));
  return std::clamp<int64_t>(k, 1, n);
}

FEDPP_CODEC_KERNEL
void subsample_gather(const float* x, int64_t n, int64_t k, uint64_t subsample_seed, float* out) {
  // out[j] is written for every i and kept only when i is selected; j < k until the last keep.
  select(n, k, subsample_seed, [&](int64_t i, int64_t j, bool) {
    if (j < k) out[j] = x[i];
  });
}

FEDPP_CODEC_KERNEL
void subsample_scatter(const float* kept, int64_t n, int64_t k, uint64_t subsample_seed,
                       float scale, float* out) {
  // Branch-free: the value's bits are masked to +0 where the position is not kept.
  select(n, k, subsample_seed, [&](int64_t i, int64_t j, bool keep) {
    const float v = scale * kept[j < k ? j : k - 1];
    uint32_t bits;
    std::memcpy(&bits, &v, 4);
    bits &= 0u - static_cast<uint32_t>(keep);
    std::memcpy(out + i, &bits, 4);
  });
}

}  // namespace fedpp::codec
