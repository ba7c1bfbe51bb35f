// Portable random draws (core/random.hpp): pinned values that every platform must reproduce,
// and, where the standard library is GCC 12's libstdc++ (the toolchain of every committed result),
// equality with std::shuffle and the std:: distributions draw for draw, so that partitions,
// splits, client samples and batch orders are unchanged by the switch.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <random>
#include <vector>

#include "fedpp/core/error.hpp"
#include "fedpp/core/random.hpp"

using namespace fedpp;

namespace {

std::vector<int64_t> iota_vector(size_t n) {
  std::vector<int64_t> v(n);
  std::iota(v.begin(), v.end(), 0);
  return v;
}

}  // namespace

// The values libstdc++ 12 gives for the same seeds (std::shuffle, uniform_int_distribution,
// normal_distribution<float>, gamma_distribution<double>, uniform_real_distribution<double>).
TEST(Random, PinnedValuesAreTheSameEverywhere) {
  Rng r(42);
  auto v = iota_vector(10);
  shuffle(v, r);
  EXPECT_EQ(v, (std::vector<int64_t>{6, 9, 1, 4, 5, 3, 0, 7, 8, 2}));
  EXPECT_EQ(uniform_below(r, 1000), 94u);
  EXPECT_EQ(uniform_below(r, 1000), 574u);

  Rng r2(7);
  Normal<float> nf(0.f, 1.f);
  EXPECT_EQ(nf(r2), 0.872695208f);
  EXPECT_EQ(nf(r2), -0.97256285f);
  EXPECT_EQ(nf(r2), 0.547309935f);
  Gamma g(0.1, 1.0);
  EXPECT_EQ(g(r2), 2.9994587139945405e-07);
  EXPECT_EQ(g(r2), 3.6751724867188236e-14);
  Gamma g2(2.5, 1.0);
  EXPECT_EQ(g2(r2), 1.5905977638240416);
  EXPECT_EQ(uniform_real(r2, 0.4, 0.6), 0.53339294643430535);
}

TEST(Random, DrawsStayInRangeAndShufflesArePermutations) {
  Rng r(3);
  for (uint64_t n : {1ull, 2ull, 3ull, 7ull, 1000ull, (1ull << 63) + 5}) {
    for (int i = 0; i < 200; ++i) EXPECT_LT(uniform_below(r, n), n);
  }
  for (size_t n : {0u, 1u, 2u, 3u, 4u, 101u, 1000u}) {
    auto v = iota_vector(n);
    shuffle(v, r);
    auto sorted = v;
    std::sort(sorted.begin(), sorted.end());
    EXPECT_EQ(sorted, iota_vector(n)) << n;
  }
  for (int i = 0; i < 1000; ++i) {
    double u = uniform_unit(r);
    EXPECT_TRUE(u >= 0.0 && u < 1.0);
    float f = uniform_unit_float(r);
    EXPECT_TRUE(f >= 0.f && f < 1.f);
    EXPECT_GT(Gamma(0.05)(r), -1e-300);
  }
  // Every position of a 3-element shuffle is reached (the pair trick covers all 6 orders).
  std::vector<std::vector<int64_t>> seen;
  for (int i = 0; i < 300; ++i) {
    auto v = iota_vector(3);
    shuffle(v, r);
    if (std::find(seen.begin(), seen.end(), v) == seen.end()) seen.push_back(v);
  }
  EXPECT_EQ(seen.size(), 6u);
  EXPECT_THROW(Gamma(0.0), Error);
  EXPECT_THROW(Normal<double>(0.0, -1.0), Error);
}

#if defined(__GLIBCXX__) && defined(_GLIBCXX_RELEASE) && _GLIBCXX_RELEASE == 12
TEST(Random, EqualsLibstdcxx12DrawForDraw) {
  for (uint64_t seed : {0ull, 1ull, 2ull, 12345ull, 0xdeadbeefull}) {
    for (size_t n : {0u, 1u, 2u, 3u, 10u, 11u, 1000u, 60001u}) {
      Rng a(seed), b(seed);
      auto x = iota_vector(n), y = iota_vector(n);
      shuffle(x, a);
      std::shuffle(y.begin(), y.end(), b);
      ASSERT_EQ(x, y) << "seed " << seed << " n " << n;
      ASSERT_EQ(a(), b());  // the same number of engine draws
    }
    Rng a(seed), b(seed);
    for (uint64_t n : {1ull, 2ull, 3ull, 10ull, 1000ull, (1ull << 40) + 3, (1ull << 63) + 1}) {
      for (int i = 0; i < 100; ++i)
        ASSERT_EQ(uniform_below(a, n), std::uniform_int_distribution<uint64_t>(0, n - 1)(b));
    }
    Normal<float> nf(0.f, 1.f);
    std::normal_distribution<float> snf(0.f, 1.f);
    Normal<double> nd(0.5, 2.0);
    std::normal_distribution<double> snd(0.5, 2.0);
    for (int i = 0; i < 1001; ++i) {
      ASSERT_EQ(nf(a), snf(b));
      ASSERT_EQ(nd(a), snd(b));
    }
    for (double alpha : {0.01, 0.1, 0.5, 1.0, 2.5, 100.0}) {
      Gamma g(alpha, 1.0);
      std::gamma_distribution<double> sg(alpha, 1.0);
      for (int i = 0; i < 1001; ++i) ASSERT_EQ(g(a), sg(b)) << alpha;
    }
    std::uniform_real_distribution<double> su(0.4, 0.6);
    for (int i = 0; i < 1000; ++i) ASSERT_EQ(uniform_real(a, 0.4, 0.6), su(b));
    ASSERT_EQ(a(), b());
  }
}
#endif
