// Portable random draws (random.hpp). Compiled with -ffp-contract=off (CMakeLists.txt): a fused
// multiply-add would round differently from the separate operations on machines that have one.
#include "fedpp/core/random.hpp"

#include <cmath>
#include <string>
#include <utility>

#include "fedpp/core/error.hpp"

namespace fedpp {

uint64_t uniform_below(Rng& rng, uint64_t n) {
  using Wide = unsigned __int128;
  Wide product = static_cast<Wide>(rng()) * n;
  auto low = static_cast<uint64_t>(product);
  if (low < n) {
    const uint64_t threshold = (0 - n) % n;  // 2^64 mod n: the values to reject
    while (low < threshold) {
      product = static_cast<Wide>(rng()) * n;
      low = static_cast<uint64_t>(product);
    }
  }
  return static_cast<uint64_t>(product >> 64);
}

void shuffle(std::vector<int64_t>& v, Rng& rng) {
  const uint64_t n = v.size();
  if (n < 2) return;
  if (n < (uint64_t{1} << 32)) {
    // i(i+1) < 2^64 for every i < n: one draw in [0, (i+1)(i+2)) gives the swap positions of
    // elements i and i+1. With an even count, element 1 goes first, alone.
    uint64_t i = 1;
    if (n % 2 == 0) {
      std::swap(v[i], v[uniform_below(rng, 2)]);
      ++i;
    }
    while (i != n) {
      const uint64_t b0 = i + 1, b1 = i + 2;
      const uint64_t x = uniform_below(rng, b0 * b1);
      std::swap(v[i], v[x / b1]);
      std::swap(v[i + 1], v[x % b1]);
      i += 2;
    }
    return;
  }
  for (uint64_t i = 1; i < n; ++i) std::swap(v[i], v[uniform_below(rng, i + 1)]);
}

double uniform_unit(Rng& rng) {
  // 2^64 is exact in double; the quotient rounds once, and a result of 1 becomes the largest
  // double below 1.
  double r = static_cast<double>(rng()) / 0x1.0p64;
  return r >= 1.0 ? std::nextafter(1.0, 0.0) : r;
}

float uniform_unit_float(Rng& rng) {
  float r = static_cast<float>(rng()) / 0x1.0p64f;
  return r >= 1.0f ? std::nextafter(1.0f, 0.0f) : r;
}

double uniform_real(Rng& rng, double a, double b) { return uniform_unit(rng) * (b - a) + a; }

namespace {
template <class Real>
Real unit_of(Rng& rng) {
  if constexpr (std::is_same_v<Real, float>)
    return uniform_unit_float(rng);
  else
    return uniform_unit(rng);
}
}  // namespace

template <class Real>
Normal<Real>::Normal(Real mean, Real stddev) : mean_(mean), stddev_(stddev) {
  FEDPP_CHECK(stddev > 0, "normal distribution: the standard deviation must be > 0 (got " +
                              std::to_string(stddev) + ")");
}

template <class Real>
Real Normal<Real>::operator()(Rng& rng) {
  Real out;
  if (has_saved_) {
    has_saved_ = false;
    out = saved_;
  } else {
    Real x, y, r2;
    do {
      x = Real(2) * unit_of<Real>(rng) - Real(1);
      y = Real(2) * unit_of<Real>(rng) - Real(1);
      r2 = x * x + y * y;
    } while (r2 > Real(1) || r2 == Real(0));
    const Real mult = std::sqrt(Real(-2) * std::log(r2) / r2);
    saved_ = x * mult;
    has_saved_ = true;
    out = y * mult;
  }
  return out * stddev_ + mean_;
}

template class Normal<float>;
template class Normal<double>;

Gamma::Gamma(double alpha, double beta) : alpha_(alpha), beta_(beta) {
  FEDPP_CHECK(alpha > 0 && beta > 0, "gamma distribution: alpha and beta must be > 0 (got " +
                                         std::to_string(alpha) + ", " + std::to_string(beta) + ")");
  malpha_ = alpha < 1.0 ? alpha + 1.0 : alpha;
  const double a1 = malpha_ - 1.0 / 3.0;
  a2_ = 1.0 / std::sqrt(9.0 * a1);
}

double Gamma::operator()(Rng& rng) {
  const double a1 = malpha_ - 1.0 / 3.0;
  double u, v, n;
  do {
    do {
      n = normal_(rng);
      v = 1.0 + a2_ * n;
    } while (v <= 0.0);
    v = v * v * v;
    u = uniform_unit(rng);
  } while (u > 1.0 - 0.0331 * n * n * n * n &&
           std::log(u) > 0.5 * n * n + a1 * (1.0 - v + std::log(v)));
  if (alpha_ == malpha_) return a1 * v * beta_;
  do u = uniform_unit(rng);
  while (u == 0.0);
  return std::pow(u, 1.0 / alpha_) * a1 * v * beta_;
}

}  // namespace fedpp
