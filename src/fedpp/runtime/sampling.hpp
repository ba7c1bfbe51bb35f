// Client sampling: each round, max(1, round(fraction * N)) distinct clients drawn from a seed
// derived from (run seed, round); returned sorted.
#pragma once
#include <cstdint>
#include <vector>

namespace fedpp {

std::vector<int64_t> sample_clients(int64_t num_clients, double fraction, uint64_t run_seed,
                                    int64_t round);

// `count` distinct clients of `candidates` (all of them when count >= their number), drawn from
// the same seeded stream: sample_from(0..N-1, m, ...) equals sample_clients(N, m/N, ...), so a
// fleet whose devices are always online samples exactly the clients a run without one does.
// Returned sorted.
std::vector<int64_t> sample_from(std::vector<int64_t> candidates, int64_t count,
                                 uint64_t run_seed, int64_t round);

}  // namespace fedpp
