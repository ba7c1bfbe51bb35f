#include "fedpp/codec/subsample.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "fedpp/codec/random.hpp"

namespace fedpp::codec {
namespace {

// Selection sampling (Knuth's algorithm S): visits i = 0..n-1 and keeps i with probability
// (still needed) / (still left), which yields exactly k positions, all k-subsets equally likely.
// Calls visit(i, j, keep) for every i < n, where j is the number kept before i; branch-free
// in the common case (the keep decision is a coin flip a branch predictor cannot learn).
template <class Visit>
void select(int64_t n, int64_t k, uint64_t seed, Visit&& visit) {
  uint64_t need = static_cast<uint64_t>(k), w = 0;
  for (int64_t i = 0; i < n; ++i) {
    const uint64_t left = static_cast<uint64_t>(n - i);
    if ((i & 1) == 0) w = stream_word(seed, static_cast<uint64_t>(i) >> 1);
    // r < need with probability need / left (to within 2^-32): r = floor(u * left) for a
    // 32-bit uniform u when left fits in 32 bits, else for a fresh 64-bit word.
    uint64_t r;
    if (left <= 0xffffffffULL) {
      r = ((w & 0xffffffffULL) * left) >> 32;
      w >>= 32;
    } else {
      r = static_cast<uint64_t>(
          (static_cast<unsigned __int128>(stream_word(~seed, static_cast<uint64_t>(i))) * left) >>
          64);
    }
    const bool keep = r < need;
    visit(i, static_cast<int64_t>(static_cast<uint64_t>(k) - need), keep);
    need -= keep;
  }
}

}  // namespace

int64_t subsample_count(int64_t n, double s) {
  if (n <= 0) return 0;
  const auto k = static_cast<int64_t>(std::llround(s * static_cast<double>(n)));
  return std::clamp<int64_t>(k, 1, n);
}

void subsample_gather(const float* x, int64_t n, int64_t k, uint64_t subsample_seed, float* out) {
  // out[j] is written for every i and kept only when i is selected; j < k until the last keep.
  select(n, k, subsample_seed, [&](int64_t i, int64_t j, bool) {
    if (j < k) out[j] = x[i];
  });
}

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
