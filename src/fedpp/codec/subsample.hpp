// Random subsampling (Konecny et al. 2016): keep k of n coordinates, a uniformly random subset
// drawn from a seed, so only the k kept values travel and the decoder recomputes the positions.
// Positions come in increasing order (selection sampling, one pass, no index array), and every
// coordinate is kept with probability exactly k / n, so scaling the kept values by n / k makes
// the decoded vector unbiased.
#pragma once
#include <cstdint>

namespace fedpp::codec {

// k = round(s * n), clamped to [1, n] (0 when n == 0). s in (0, 1].
int64_t subsample_count(int64_t n, double s);

// out[0..k) = x at the k kept positions of [0, n), in increasing position order.
void subsample_gather(const float* x, int64_t n, int64_t k, uint64_t subsample_seed, float* out);

// out[0..n) = scale * kept[j] at the j-th kept position, 0 elsewhere (the inverse of gather).
void subsample_scatter(const float* kept, int64_t n, int64_t k, uint64_t subsample_seed,
                       float scale, float* out);

}  // namespace fedpp::codec
