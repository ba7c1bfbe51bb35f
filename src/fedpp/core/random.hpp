// Portable random draws: the project's own shuffle and distributions.
//
// Why: the C++ standard fixes the engines (std::mt19937_64 gives the same bits everywhere) but
// not std::shuffle nor the std:: distributions, whose output differs between standard libraries
// (libstdc++, libc++, MSVC). A server and clients built with different toolchains would then
// disagree on partitions, train/test splits, client sampling and batch orders. Everything in
// fedpp that draws from a seeded engine goes through these functions instead.
//
// What they compute: exactly the algorithms of GCC 12's libstdc++ (the toolchain of Debian 12,
// on which every committed result in results/ was produced), written out here so that any
// compiler and standard library gives the same numbers; tests/test_random.cpp checks them
// against libstdc++ draw for draw where libstdc++ is the library, and against pinned values
// everywhere. Integer draws and shuffles are exact on every platform. Real-valued draws use only
// IEEE arithmetic (compiled without floating-point contraction) plus the C library's
// log/sqrt/pow; sqrt is exact by IEEE 754, log and pow agree between the common C libraries to
// the last bit for nearly all arguments, so a real draw may differ in its last bit on an exotic
// libm, which moves a Dirichlet partition's boundary by one sample at most in rare cases.
//
// Threading: stateless functions, safe from any thread; a Normal or Gamma object (which keeps a
// saved normal deviate, as std:: does) and its engine belong to one thread. Nothing here throws
// except the constructors' argument checks (fedpp::Error naming the bad argument).
#pragma once
#include <cstdint>
#include <random>
#include <vector>

namespace fedpp {

// The engine: the standard fixes its output for a given seed on every platform.
using Rng = std::mt19937_64;

// A uniform integer in [0, n), n >= 1 (Lemire's nearly divisionless method: unbiased; draws
// one engine value, rarely more). Equals std::uniform_int_distribution<uint64_t>(0, n-1) of
// libstdc++ 12 on a 64-bit engine.
uint64_t uniform_below(Rng& rng, uint64_t n);

// A uniformly random permutation of v (Fisher-Yates; for fewer than 2^32 elements two swap
// positions come from one draw, as libstdc++'s std::shuffle does).
void shuffle(std::vector<int64_t>& v, Rng& rng);

// A uniform real in [0, 1): one engine value / 2^64, rounded to the type (never 1).
double uniform_unit(Rng& rng);
float uniform_unit_float(Rng& rng);

// A uniform real in [a, b) (a + (b - a) * uniform_unit; b itself may appear by rounding).
double uniform_real(Rng& rng, double a, double b);

// Normal deviates with the given mean and standard deviation (Marsaglia's polar method; each
// accepted pair yields two deviates, the second kept for the next call).
template <class Real>
class Normal {
 public:
  explicit Normal(Real mean = 0, Real stddev = 1);
  Real operator()(Rng& rng);

 private:
  Real mean_, stddev_;
  Real saved_ = 0;
  bool has_saved_ = false;
};
extern template class Normal<float>;
extern template class Normal<double>;

// Gamma(alpha, beta) deviates, alpha > 0, beta > 0 (Marsaglia and Tsang; alpha < 1 through
// alpha + 1 and a power of a uniform). Dirichlet shares are normalised Gamma(alpha, 1) draws.
class Gamma {
 public:
  Gamma(double alpha, double beta = 1.0);
  double operator()(Rng& rng);

 private:
  double alpha_, beta_, malpha_, a2_;
  Normal<double> normal_;
};

// Draws from a single 64-bit word (for counter-based choices: the word is derive_seed(...) of
// the choice's coordinates, so no engine state is carried). bits_below: an integer in [0, n) by
// multiply-shift (bias below n / 2^64); bits_unit: a double in [0, 1) from the top 53 bits.
inline uint64_t bits_below(uint64_t bits, uint64_t n) {
  return static_cast<uint64_t>((static_cast<unsigned __int128>(bits) * n) >> 64);
}
inline double bits_unit(uint64_t bits) { return static_cast<double>(bits >> 11) * 0x1.0p-53; }

}  // namespace fedpp
