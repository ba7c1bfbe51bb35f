#include "fedpp/runtime/sampling.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "fedpp/core/random.hpp"
#include "fedpp/core/seed.hpp"

namespace fedpp {

std::vector<int64_t> sample_clients(int64_t n, double fraction, uint64_t run_seed,
                                    int64_t round) {
  int64_t m = std::max<int64_t>(1, std::llround(fraction * static_cast<double>(n)));
  std::vector<int64_t> all(n);
  std::iota(all.begin(), all.end(), 0);
  return sample_from(std::move(all), m, run_seed, round);
}

std::vector<int64_t> sample_from(std::vector<int64_t> all, int64_t count, uint64_t run_seed,
                                 int64_t round) {
  if (count < static_cast<int64_t>(all.size())) {
    Rng rng(derive_seed(run_seed, Purpose::kSampling, {static_cast<uint64_t>(round)}));
    shuffle(all, rng);
    all.resize(static_cast<size_t>(std::max<int64_t>(0, count)));
  }
  std::sort(all.begin(), all.end());
  return all;
}

}  // namespace fedpp
