// Client sampling: each round, max(1, round(fraction * N)) distinct clients drawn from a seed
// derived from (run seed, round); returned sorted.
#pragma once
#include <cstdint>
#include <vector>

namespace fedpp {

std::vector<int64_t> sample_clients(int64_t num_clients, double fraction, uint64_t run_seed,
                                    int64_t round);

}  // namespace fedpp
