// Deterministic seed derivation. Every random choice in a run (client sampling, shuffling,
// partitioning, codec signs and masks, model initialisation) draws from a seed derived from the
// run seed and the coordinates of that choice, so results do not depend on thread scheduling
// and both ends of a link can recompute the same seed without sending it.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <string_view>

namespace fedpp {

// SplitMix64 finaliser: a bijective 64-bit mixer.
constexpr uint64_t mix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// FNV-1a hash of a string (stable across platforms and runs, unlike std::hash).
constexpr uint64_t hash_name(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (char c : s) h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ULL;
  return h;
}

// Seed for the choice at coordinates (parts...) under run seed `base`.
inline uint64_t derive_seed(uint64_t base, std::initializer_list<uint64_t> parts) {
  uint64_t h = mix64(base);
  for (uint64_t p : parts) h = mix64(h ^ mix64(p));
  return h;
}

// Well-known purposes, so that two choices at the same coordinates never share a stream.
enum class Purpose : uint64_t {
  kPartition = 1, kSampling, kShuffle, kInit, kCodecDown, kCodecUp, kDropout, kMisc, kFleet
};
inline uint64_t derive_seed(uint64_t base, Purpose p, std::initializer_list<uint64_t> parts) {
  uint64_t h = derive_seed(base, {static_cast<uint64_t>(p)});
  for (uint64_t q : parts) h = mix64(h ^ mix64(q));
  return h;
}

}  // namespace fedpp
