// Counter-based random streams for the codec. Every random choice of a codec step (Hadamard
// signs, subsample positions, quantisation dither) is a pure function of (seed, step, index),
// so encoder and decoder recompute the same choices without sending them, several threads can
// encode at once, and nothing touches torch's global generator.
#pragma once
#include <cstdint>

#include "fedpp/core/seed.hpp"

namespace fedpp::codec {

// One independent stream per codec step.
enum class Stream : uint64_t {
  kSigns = 0x5349474eULL,
  kSubsample = 0x53554253ULL,
  kQuantize = 0x5155414eULL,
};

// The seed of `step`'s stream under the per-tensor seed.
inline uint64_t stream_seed(uint64_t seed, Stream step) {
  return mix64(seed ^ mix64(static_cast<uint64_t>(step)));
}

// Word i of a stream: SplitMix64 output i (a bijective mix of seed + i * golden ratio).
inline uint64_t stream_word(uint64_t stream, uint64_t i) {
  return mix64(stream + i * 0x9e3779b97f4a7c15ULL);
}

}  // namespace fedpp::codec
