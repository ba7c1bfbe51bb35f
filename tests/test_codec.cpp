// Tests of the codec: building blocks (bit packing, Hadamard, Kashin, subsampling,
// quantisation) and the Pipeline's wire format, unbiasedness, sizes and error handling.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "fedpp/codec/bitpack.hpp"
#include "fedpp/codec/codec.hpp"
#include "fedpp/codec/hadamard.hpp"
#include "fedpp/codec/kashin.hpp"
#include "fedpp/codec/quantize.hpp"
#include "fedpp/codec/subsample.hpp"
#include "fedpp/core/config.hpp"
#include "fedpp/core/error.hpp"
#include "fedpp/core/seed.hpp"

namespace fedpp {
namespace {

std::vector<float> gaussian(int64_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = nd(rng);
  return v;
}

double norm(const float* x, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += double(x[i]) * x[i];
  return std::sqrt(s);
}

double max_abs(const float* x, int64_t n) {
  double m = 0;
  for (int64_t i = 0; i < n; ++i) m = std::max(m, double(std::abs(x[i])));
  return m;
}

double rel_error(const std::vector<float>& a, const float* b) {
  double e = 0;
  for (size_t i = 0; i < a.size(); ++i) e += std::pow(double(a[i]) - b[i], 2);
  return std::sqrt(e) / norm(a.data(), int64_t(a.size()));
}

CodecSpec spec(const std::string& transform, double s, int bits, int64_t min_elements = 0) {
  CodecSpec c;
  c.transform = transform;
  c.subsample = s;
  c.bits = bits;
  c.min_elements = min_elements;
  return c;
}

torch::Tensor to_tensor(const std::vector<float>& v) {
  return torch::from_blob(const_cast<float*>(v.data()), {int64_t(v.size())}, torch::kFloat)
      .clone();
}

// Expects decode to throw fedpp::Error whose message contains `part`.
// Both decode overloads (bytes lent and bytes handed over) are checked.
void expect_decode_error(const Pipeline& p, const std::string& bytes,
                         const std::vector<int64_t>& shape, const std::string& part) {
  for (bool owned : {false, true}) {
    try {
      if (owned)
        p.decode(std::string(bytes), shape, 7);
      else
        p.decode(bytes, shape, 7);
      FAIL() << "no error; expected one mentioning '" << part << "' (owned " << owned << ")";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
    }
  }
}

// ---- building blocks --------------------------------------------------------------------------

TEST(CodecBitpack, RoundTripEveryWidth) {
  std::mt19937_64 rng(1);
  for (int q = 1; q <= 16; ++q) {
    for (int64_t count : {0, 1, 3, 7, 8, 31, 32, 33, 1000, 4099}) {
      std::vector<uint16_t> codes(count), back(count, 0xdead);
      for (auto& c : codes) c = static_cast<uint16_t>(rng() & ((1u << q) - 1));
      const int64_t nbytes = codec::packed_bytes(count, q);
      EXPECT_EQ(nbytes, (count * q + 7) / 8);
      std::vector<uint8_t> buf(nbytes + 1, 0xAB);  // a guard byte after the stream
      codec::pack_bits(codes.data(), count, q, buf.data());
      EXPECT_EQ(buf[nbytes], 0xAB) << "q=" << q << " count=" << count << " wrote past the end";
      codec::unpack_bits(buf.data(), count, q, back.data());
      EXPECT_EQ(codes, back) << "q=" << q << " count=" << count;
    }
  }
}

// Every width and length against a bit-by-bit packing of the documented layout, with garbage in
// the bits above q (pack_bits uses only the low q bits); widths 1, 2, 4, 8 have their own loops.
TEST(CodecBitpack, SameStreamAsBitByBit) {
  std::mt19937_64 rng(2);
  for (int q = 1; q <= 16; ++q) {
    for (int64_t count : {1, 5, 8, 9, 63, 64, 65, 1001}) {
      std::vector<uint16_t> codes(count);
      for (auto& c : codes) c = static_cast<uint16_t>(rng());
      std::vector<uint8_t> want(codec::packed_bytes(count, q), 0), got(want.size(), 0xAB);
      for (int64_t i = 0; i < count; ++i)
        for (int b = 0; b < q; ++b)
          if ((codes[i] >> b) & 1) want[(i * q + b) / 8] |= uint8_t(1u << ((i * q + b) % 8));
      codec::pack_bits(codes.data(), count, q, got.data());
      EXPECT_EQ(got, want) << "q=" << q << " count=" << count;
    }
  }
}

TEST(CodecBitpack, LayoutIsLsbFirst) {
  const std::vector<uint16_t> codes = {1, 2, 3, 15, 0};
  std::vector<uint8_t> buf(codec::packed_bytes(5, 4));
  codec::pack_bits(codes.data(), 5, 4, buf.data());
  EXPECT_EQ(buf, (std::vector<uint8_t>{0x21, 0xF3, 0x00}));
  const std::vector<uint16_t> bits = {1, 0, 1, 1, 0, 0, 0, 0, 1};
  std::vector<uint8_t> b1(2);
  codec::pack_bits(bits.data(), 9, 1, b1.data());
  EXPECT_EQ(b1, (std::vector<uint8_t>{0x0D, 0x01}));
}

TEST(CodecHadamard, FwhtMatchesDefinition) {
  // H_2n [a; b] = [H a + H b; H a - H b], checked at sizes that cross the cache blocks.
  for (int64_t n : {int64_t{2}, int64_t{8}, int64_t{16}, int64_t{4096}, int64_t{1} << 18}) {
    std::vector<float> x = gaussian(n, uint64_t(n)), full = x;
    codec::fwht(full.data(), n, 1.0f);
    std::vector<float> a(x.begin(), x.begin() + n / 2), b(x.begin() + n / 2, x.end());
    if (n == 2) {
      EXPECT_FLOAT_EQ(full[0], x[0] + x[1]);
      EXPECT_FLOAT_EQ(full[1], x[0] - x[1]);
    }
    codec::fwht(a.data(), n / 2, 1.0f);
    codec::fwht(b.data(), n / 2, 1.0f);
    double err = 0, scale = 0;
    for (int64_t i = 0; i < n / 2; ++i) {
      err = std::max(err, double(std::abs(full[i] - (a[i] + b[i]))));
      err = std::max(err, double(std::abs(full[i + n / 2] - (a[i] - b[i]))));
      scale = std::max(scale, double(std::abs(full[i])));
    }
    EXPECT_LT(err, 1e-5 * scale + 1e-6) << "n=" << n;
  }
  // A naive 8x8 check of the sign pattern: H[i][j] = (-1)^popcount(i & j).
  std::vector<float> e(8, 0.0f);
  e[5] = 1.0f;
  codec::fwht(e.data(), 8, 1.0f);
  for (int i = 0; i < 8; ++i) EXPECT_EQ(e[i], __builtin_popcount(i & 5) % 2 ? -1.0f : 1.0f);
}

// The blocked transform against the plain one, level by level (stride 1, 2, 4, ...; the scale
// multiplies at the last level only), bit for bit, at every power of two up to 2^22: the cache
// blocking (L1, L2, column copies of 2 to 64 rows) changes the order elements are visited in,
// never the operations an element goes through.
TEST(CodecHadamard, FwhtEqualsTheLevelByLevelTransformBitForBit) {
  auto reference = [](std::vector<float>& x, float s) {
    const int64_t n = static_cast<int64_t>(x.size());
    if (n == 1) x[0] *= s;
    for (int64_t h = 1; h < n; h *= 2) {
      const float f = 2 * h == n ? s : 1.0f;
      for (int64_t i = 0; i < n; i += 2 * h)
        for (int64_t j = i; j < i + h; ++j) {
          const float u = x[j], v = x[j + h];
          x[j] = (u + v) * f;
          x[j + h] = (u - v) * f;
        }
    }
  };
  for (int lg = 0; lg <= 22; ++lg) {
    const int64_t n = int64_t{1} << lg;
    const float s = static_cast<float>(1.0 / std::sqrt(static_cast<double>(n)));
    std::vector<float> want = gaussian(n, 100 + lg), got = want;
    reference(want, s);
    codec::fwht(got.data(), n, s);
    EXPECT_EQ(std::memcmp(want.data(), got.data(), sizeof(float) * n), 0) << "n = 2^" << lg;
  }
}

TEST(CodecHadamard, OrthonormalAndSelfInverse) {
  for (int64_t d : {1, 5, 1000, 4096, 100003}) {
    const int64_t n = codec::next_pow2(d);
    std::vector<float> x = gaussian(d, 3), y(n), back(d);
    codec::hadamard_forward(x.data(), d, n, 99, y.data());
    EXPECT_NEAR(norm(y.data(), n), norm(x.data(), d), 1e-5 * norm(x.data(), d)) << d;
    codec::hadamard_inverse(y.data(), n, d, 99, back.data());
    EXPECT_LT(rel_error(x, back.data()), 1e-6) << d;
  }
  // Plain (unsigned) FWHT scaled by 1/sqrt(n) is its own inverse.
  std::vector<float> x = gaussian(1 << 12, 4), y = x;
  const float s = 1.0f / 64.0f;
  codec::fwht(y.data(), 1 << 12, s);
  codec::fwht(y.data(), 1 << 12, s);
  EXPECT_LT(rel_error(x, y.data()), 1e-6);
}

TEST(CodecKashin, PaddedDimension) {
  EXPECT_EQ(codec::kashin_dim(1000), 2048);      // 1000/1024 > 0.85: pad once more
  EXPECT_EQ(codec::kashin_dim(100000), 131072);  // 0.76
  EXPECT_EQ(codec::kashin_dim(4096), 8192);
  EXPECT_EQ(codec::kashin_dim(1605632), 2097152);
}

TEST(CodecKashin, ExactRepresentation) {
  for (int64_t d : {1, 1000, 4096, 100000}) {
    const int64_t n = codec::kashin_dim(d);
    std::vector<float> x = gaussian(d, 5), coefs(n), back(d);
    codec::kashin_encode(x.data(), d, 11, {}, coefs.data());
    codec::hadamard_inverse(coefs.data(), n, d, 11, back.data());
    EXPECT_LT(rel_error(x, back.data()), 1e-5) << d;
  }
}

TEST(CodecKashin, SmallerInfinityNormThanHadamard) {
  // A spiky input for the Hadamard frame: 64 spikes in its coefficient space, so the plain
  // randomized Hadamard coefficients are far from flat. Kashin's iterations spread them.
  const int64_t d = 3000, n = codec::kashin_dim(d);
  ASSERT_EQ(n, codec::next_pow2(d));  // same frame as the plain transform, no extra padding
  std::vector<float> spikes(n, 0.0f), x(d), h(n), coefs(n), back(d);
  for (int i = 0; i < 64; ++i) spikes[(i * 7919) % n] = (i % 2) ? 1.0f : -1.0f;
  codec::hadamard_inverse(spikes.data(), n, d, 21, x.data());
  codec::hadamard_forward(x.data(), d, n, 21, h.data());
  codec::kashin_encode(x.data(), d, 21, {}, coefs.data());
  const double unit = norm(x.data(), d) / std::sqrt(double(n));  // a flat vector's level
  EXPECT_GT(max_abs(h.data(), n), 6.5 * unit);
  EXPECT_LT(max_abs(coefs.data(), n), 0.85 * max_abs(h.data(), n));
  EXPECT_LT(norm(coefs.data(), n), 1.1 * norm(x.data(), d));
  codec::hadamard_inverse(coefs.data(), n, d, 21, back.data());
  EXPECT_LT(rel_error(x, back.data()), 1e-5);

  // On Gaussian data (already flat) the coefficients stay within a modest multiple of
  // ||x|| / sqrt(n).
  for (int64_t dg : {3000, 100000}) {
    const int64_t ng = codec::kashin_dim(dg);
    std::vector<float> g = gaussian(dg, 8), gc(ng);
    codec::kashin_encode(g.data(), dg, 3, {}, gc.data());
    EXPECT_LT(max_abs(gc.data(), ng), 4.5 * norm(g.data(), dg) / std::sqrt(double(ng))) << dg;
  }
}

TEST(CodecSubsample, ExactCountSortedAndSeeded) {
  EXPECT_EQ(codec::subsample_count(100000, 0.5), 50000);
  EXPECT_EQ(codec::subsample_count(10, 0.01), 1);
  EXPECT_EQ(codec::subsample_count(10, 1.0), 10);
  const int64_t n = 1000, k = 250;
  std::vector<float> idx(n);
  for (int64_t i = 0; i < n; ++i) idx[i] = float(i);
  std::vector<float> a(k), b(k), c(k);
  codec::subsample_gather(idx.data(), n, k, 1, a.data());
  codec::subsample_gather(idx.data(), n, k, 1, b.data());
  codec::subsample_gather(idx.data(), n, k, 2, c.data());
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  EXPECT_TRUE(std::is_sorted(a.begin(), a.end()));
  EXPECT_EQ(std::adjacent_find(a.begin(), a.end()), a.end());
  std::vector<float> back(n, -1.0f);
  codec::subsample_scatter(a.data(), n, k, 1, 2.0f, back.data());
  int64_t kept = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (back[i] != 0.0f) {
      EXPECT_EQ(back[i], 2.0f * float(i));
      ++kept;
    }
  }
  EXPECT_EQ(kept, k - (a[0] == 0.0f ? 1 : 0));
}

TEST(CodecQuantize, LevelsAndRange) {
  std::vector<float> x = {-1.0f, 1.0f, 0.0f, 0.5f};
  const auto r = codec::value_range(x.data(), 4);
  EXPECT_EQ(r.lo, -1.0f);
  EXPECT_EQ(r.hi, 1.0f);
  std::vector<uint16_t> codes(4);
  codec::quantize(x.data(), 4, 2, r, 5, codes.data());
  EXPECT_EQ(codes[0], 0);  // the extremes are levels
  EXPECT_EQ(codes[1], 3);
  std::vector<float> back(4);
  codec::dequantize(codes.data(), 4, 2, r, back.data());
  for (int i = 0; i < 4; ++i) EXPECT_LE(std::abs(back[i] - x[i]), 2.0f / 3.0f + 1e-6f);
}

// ---- pipeline ---------------------------------------------------------------------------------

// The range of a vector whose minimum (or maximum) is zero, with both +0 and -0 in it: the first
// zero in the vector, as a one-at-a-time loop finds it, whatever the vector width of the kernel
// (the zeros sit in lanes 13 and 2 of a 16-wide kernel: lane order alone would pick the second).
TEST(CodecQuantize, RangeKeepsTheFirstZero) {
  for (bool negative_first : {false, true}) {
    std::vector<float> x(100, 0.25f), y(100, -0.25f);
    x[45] = y[45] = negative_first ? -0.0f : 0.0f;
    x[66] = y[66] = negative_first ? 0.0f : -0.0f;
    const auto rx = codec::value_range(x.data(), 100), ry = codec::value_range(y.data(), 100);
    EXPECT_EQ(rx.lo, 0.0f);
    EXPECT_EQ(std::signbit(rx.lo), negative_first);
    EXPECT_EQ(rx.hi, 0.25f);
    EXPECT_EQ(ry.hi, 0.0f);
    EXPECT_EQ(std::signbit(ry.hi), negative_first);
    EXPECT_EQ(ry.lo, -0.25f);
  }
}

TEST(CodecPipeline, IdentityIsBitExact) {
  torch::Tensor t = torch::randn({64, 32, 5, 5});
  t[0][0][0][0] = std::numeric_limits<float>::quiet_NaN();
  t[0][0][0][1] = -std::numeric_limits<float>::infinity();
  t[0][0][0][2] = -0.0f;
  t[0][0][0][3] = std::numeric_limits<float>::denorm_min();
  for (const char* tr : {"identity", "hadamard", "kashin"}) {
    Pipeline p(spec(tr, 1.0, 0));
    const std::string bytes = p.encode(t, 3);
    EXPECT_EQ(bytes.size(), 12 + 4 * size_t(t.numel()));
    torch::Tensor back = p.decode(bytes, {64, 32, 5, 5}, 3);
    ASSERT_EQ(back.sizes(), t.sizes());
    EXPECT_EQ(std::memcmp(back.data_ptr(), t.data_ptr(), 4 * t.numel()), 0) << tr;
  }
}

// Handing the bytes over decodes the same values; a raw encoding becomes the tensor's storage
// in place (no second buffer of its size), and the tensor outlives the caller's string.
TEST(CodecPipeline, DecodingHandedOverBytesEqualsDecodingLentBytes) {
  CodecSpec q4 = spec("hadamard", 0.5, 4);
  q4.min_elements = 0;
  const std::vector<std::pair<torch::Tensor, Pipeline>> cases = {
      {torch::randn({37, 3}), Pipeline()},
      {torch::randn({5}, torch::kDouble), Pipeline()},
      {torch::randn({9}).to(torch::kHalf), Pipeline()},
      {torch::randint(-9, 9, {7}, torch::kLong), Pipeline()},
      {torch::randint(0, 200, {3}, torch::kByte), Pipeline()},  // short: held in place
      {torch::rand({11}) > 0.5, Pipeline()},
      {torch::randn({300}), Pipeline(q4)},
  };
  for (const auto& [t, p] : cases) {
    const std::string bytes = p.encode(t, 5);
    const std::vector<int64_t> shape(t.sizes().begin(), t.sizes().end());
    const torch::Tensor lent = p.decode(bytes, shape, 5);
    torch::Tensor owned;
    {
      std::string copy = bytes;
      owned = p.decode(std::move(copy), shape, 5);
    }  // whatever `copy` still held is gone; `owned` must not depend on it
    ASSERT_EQ(owned.scalar_type(), lent.scalar_type()) << t.scalar_type();
    EXPECT_TRUE(torch::equal(owned, lent)) << t.scalar_type();
    owned.fill_(0);  // writable storage
  }
  const torch::Tensor big = torch::randn({1000});
  std::string raw = Pipeline().encode(big, 0);
  const char* where = raw.data();
  const torch::Tensor t = Pipeline().decode(std::move(raw), {1000}, 0);
  EXPECT_EQ(static_cast<const char*>(t.data_ptr()), where + 12);  // no copy
  EXPECT_TRUE(torch::equal(t, big));
}

TEST(CodecPipeline, IntegerAndDoubleTensorsAreLossless) {
  Pipeline p(spec("kashin", 0.25, 2, /*min_elements=*/10000));
  torch::Tensor labels = torch::randint(-1000000000000LL, 1000000000000LL, {20000}, torch::kLong);
  std::string b = p.encode(labels, 1);
  EXPECT_EQ(b.size(), 12 + 8 * 20000u);
  torch::Tensor back = p.decode(b, {20000}, 1);
  EXPECT_EQ(back.scalar_type(), torch::kLong);
  EXPECT_TRUE(torch::equal(back, labels));

  torch::Tensor i32 = torch::arange(100, torch::kInt).reshape({10, 10});
  torch::Tensor back32 = p.decode(p.encode(i32, 1), {10, 10}, 1);
  EXPECT_EQ(back32.scalar_type(), torch::kInt);
  EXPECT_TRUE(torch::equal(back32, i32));

  torch::Tensor mask = torch::rand({50}) > 0.5;
  EXPECT_TRUE(torch::equal(p.decode(p.encode(mask, 1), {50}, 1), mask));

  torch::Tensor dbl = torch::randn({30}, torch::kDouble);  // small: raw in its own dtype
  torch::Tensor backd = p.decode(p.encode(dbl, 1), {30}, 1);
  EXPECT_EQ(backd.scalar_type(), torch::kDouble);
  EXPECT_TRUE(torch::equal(backd, dbl));
}

TEST(CodecPipeline, SmallTensorsTravelUncompressed) {
  Pipeline p(spec("kashin", 0.5, 2, /*min_elements=*/10000));
  torch::Tensor bias = torch::randn({512});
  std::string b = p.encode(bias, 9);
  EXPECT_EQ(b.size(), 12 + 4 * 512u);
  EXPECT_TRUE(torch::equal(p.decode(b, {512}, 9), bias));
  // At the threshold it is compressed.
  EXPECT_LT(p.encode(torch::randn({10000}), 9).size(), 10000u);
}

TEST(CodecPipeline, EncodedSizes) {
  const int64_t d = 100000;
  torch::Tensor t = torch::randn({d});
  auto size = [&](CodecSpec s) { return Pipeline(s).encode(t, 1).size(); };
  // header 32 + range 8 + ceil(k * q / 8)
  EXPECT_EQ(size(spec("identity", 0.5, 4)), 32u + 8 + 50000 * 4 / 8);
  EXPECT_EQ(size(spec("identity", 1.0, 1)), 32u + 8 + 12500);
  EXPECT_EQ(size(spec("identity", 1.0, 3)), 32u + 8 + 37500);
  EXPECT_EQ(size(spec("hadamard", 1.0, 8)), 32u + 8 + 131072);
  EXPECT_EQ(size(spec("kashin", 0.25, 2)), 32u + 8 + 32768 * 2 / 8);
  EXPECT_EQ(size(spec("hadamard", 0.5, 0)), 32u + 4 * 65536);
  CodecSpec f16 = spec("identity", 1.0, 0);
  f16.float16 = true;
  EXPECT_EQ(size(f16), 32u + 2 * d);
  EXPECT_EQ(size(spec("identity", 1.0, 0)), 12u + 4 * d);
  // A constant vector sends one value.
  const Pipeline q4(spec("identity", 1.0, 4));
  const std::string constant = q4.encode(torch::full({d}, 2.5f), 1);
  EXPECT_EQ(constant.size(), 36u);
  EXPECT_TRUE(torch::equal(q4.decode(constant, {d}, 1), torch::full({d}, 2.5f)));
}

TEST(CodecPipeline, DeterministicPerSeed) {
  torch::Tensor t = torch::randn({300, 100});
  for (const char* tr : {"identity", "hadamard", "kashin"}) {
    Pipeline p(spec(tr, 0.5, 3));
    EXPECT_EQ(p.encode(t, 42), p.encode(t, 42)) << tr;
    EXPECT_NE(p.encode(t, 42), p.encode(t, 43)) << tr;
    EXPECT_TRUE(torch::equal(p.decode(p.encode(t, 42), {300, 100}, 42),
                             p.decode(p.encode(t, 42), {300, 100}, 42)));
  }
}

// The encoded bytes and the decoded values of fixed inputs, pinned by their FNV-1a hashes: the
// same bytes on every machine (the codec's kernels are compiled for several instruction sets and
// chosen at run time) and after every speed-up. The input is made from integers alone (no libm,
// no torch generator). d = 1,100,000 pads to 2^21, so every blocking level of the transform runs.
// The hashes were taken from the scalar kernels before they were vectorised; a change here is a
// change of the wire format or of the random streams and needs a new codec version.
TEST(CodecPipeline, EncodedBytesArePinned) {
  auto fnv = [](const void* p, size_t n) {
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; ++i) h = (h ^ static_cast<const uint8_t*>(p)[i]) * 1099511628211ULL;
    return h;
  };
  struct Case {
    const char* transform;
    double subsample;
    int bits;
    bool float16;
    int64_t d;
    uint64_t encoded, decoded;
  };
  const Case cases[] = {
      {"identity", 1.0, 8, false, 3000, 0x850b4baf3870c9c6ULL, 0xf3343cdfae262b17ULL},
      {"hadamard", 1.0, 4, false, 3000, 0x73a712315ae2b2c1ULL, 0x1d486b3aa3e7b017ULL},
      {"hadamard", 1.0, 0, false, 1100000, 0x8398212e4009f1e1ULL, 0xa08a6fbc008055e0ULL},
      {"hadamard", 1.0, 4, false, 1100000, 0x82ba54f9a4484e6dULL, 0xbc990cdf61abe3a9ULL},
      {"hadamard", 0.5, 2, false, 1100000, 0x9252aa19c506efeeULL, 0xe7bfb28270126dfdULL},
      {"hadamard", 1.0, 0, true, 200000, 0xfecc8efda4677f4bULL, 0x81025043032748daULL},
      {"kashin", 1.0, 4, false, 3000, 0x930d4a2cae3d95c4ULL, 0x20f8158e24413bd4ULL},
      {"kashin", 1.0, 4, false, 1100000, 0x103e6a1032cb979bULL, 0x493b5c3784be01ffULL},
      {"kashin", 0.5, 1, false, 1100000, 0x61925a874e0b0e45ULL, 0x956945dc7d441d02ULL},
  };
  for (const auto& c : cases) {
    std::vector<float> x(static_cast<size_t>(c.d));
    for (int64_t i = 0; i < c.d; ++i)  // uniform in [-1, 1), 24 bits, from SplitMix64
      x[i] = static_cast<float>(static_cast<int64_t>(mix64(static_cast<uint64_t>(i)) >> 40) -
                                (int64_t{1} << 23)) / 8388608.0f;
    CodecSpec sp = spec(c.transform, c.subsample, c.bits);
    sp.float16 = c.float16;
    Pipeline p(sp);
    const std::string bytes = p.encode(to_tensor(x), 1234);
    const torch::Tensor back = p.decode(bytes, {c.d}, 1234);
    const uint64_t he = fnv(bytes.data(), bytes.size());
    const uint64_t hd = fnv(back.data_ptr(), static_cast<size_t>(back.numel()) * 4);
    EXPECT_EQ(he, c.encoded) << sp.describe() << " d=" << c.d << std::hex << " encoded 0x" << he;
    EXPECT_EQ(hd, c.decoded) << sp.describe() << " d=" << c.d << std::hex << " decoded 0x" << hd;
  }
}

TEST(CodecPipeline, LossyRoundTripAccuracy) {
  torch::Tensor t = torch::randn({64, 32, 5, 5});
  const double tn = t.norm().item<double>();
  auto err = [&](CodecSpec s) {
    Pipeline p(s);
    return (p.decode(p.encode(t, 5), {64, 32, 5, 5}, 5) - t).norm().item<double>() / tn;
  };
  CodecSpec f16 = spec("hadamard", 1.0, 0);
  f16.float16 = true;
  EXPECT_LT(err(f16), 1e-3);
  EXPECT_LT(err(spec("identity", 1.0, 16)), 1e-3);
  EXPECT_LT(err(spec("hadamard", 1.0, 8)), 0.02);
  EXPECT_LT(err(spec("kashin", 1.0, 8)), 0.02);
  EXPECT_LT(err(spec("kashin", 1.0, 4)), 0.2);
  // Rotation helps on heavy-tailed data: a few outliers stretch the identity's range.
  torch::Tensor spiky = torch::randn({100000});
  spiky[10] = 300.0f;
  spiky[20000] = -250.0f;
  const double sn = spiky.norm().item<double>();
  auto err2 = [&](const char* tr) {
    Pipeline p(spec(tr, 1.0, 4));
    return (p.decode(p.encode(spiky, 5), {100000}, 5) - spiky).norm().item<double>() / sn;
  };
  EXPECT_LT(err2("hadamard"), 0.5 * err2("identity"));
  EXPECT_LT(err2("kashin"), 0.5 * err2("identity"));
}

// mean over seeds of decode(encode(x, seed)) -> x within 5 standard errors (from the sample
// variance of each coordinate), for every lossy combination.
TEST(CodecPipeline, Unbiased) {
  const int64_t d = 48;
  std::vector<float> xv = gaussian(d, 17);
  torch::Tensor x = to_tensor(xv);
  const int trials = 2000;
  for (CodecSpec s : {spec("identity", 0.5, 0), spec("identity", 1.0, 1),
                      spec("identity", 1.0, 2), spec("hadamard", 0.25, 0),
                      spec("hadamard", 1.0, 1), spec("kashin", 0.5, 2),
                      spec("kashin", 1.0, 1)}) {
    Pipeline p(s);
    std::vector<double> sum(d, 0.0), sq(d, 0.0);
    for (int seed = 0; seed < trials; ++seed) {
      torch::Tensor y = p.decode(p.encode(x, seed), {d}, seed);
      const float* yp = y.data_ptr<float>();
      for (int64_t i = 0; i < d; ++i) sum[i] += yp[i], sq[i] += double(yp[i]) * yp[i];
    }
    double worst = 0;
    for (int64_t i = 0; i < d; ++i) {
      const double mean = sum[i] / trials, var = std::max(0.0, sq[i] / trials - mean * mean);
      const double z = std::abs(mean - xv[i]) / (std::sqrt(var / trials) + 1e-6);
      worst = std::max(worst, z);
    }
    EXPECT_LT(worst, 5.0) << s.describe();
  }
}

TEST(CodecPipeline, AcceptsNonContiguousAndDoubleInput) {
  torch::Tensor base = torch::randn({200, 300}, torch::kDouble);
  torch::Tensor t = base.t();  // non-contiguous view
  Pipeline p(spec("hadamard", 1.0, 16));
  torch::Tensor back = p.decode(p.encode(t, 2), {300, 200}, 2);
  EXPECT_EQ(back.scalar_type(), torch::kFloat);
  EXPECT_LT((back.to(torch::kDouble) - t).abs().max().item<double>(), 1e-3);
}

TEST(CodecPipeline, NonFiniteInputToLossyStepsIsAnError) {
  torch::Tensor t = torch::randn({20000});
  t[5] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_THROW(Pipeline(spec("hadamard", 1.0, 8)).encode(t, 1), Error);
  EXPECT_THROW(Pipeline(spec("identity", 1.0, 8)).encode(t, 1), Error);
}

TEST(CodecPipeline, MalformedInputIsAnError) {
  Pipeline p(spec("kashin", 0.5, 4));
  torch::Tensor t = torch::randn({120, 125});
  const std::string good = p.encode(t, 7);
  ASSERT_NO_THROW(p.decode(good, {120, 125}, 7));

  expect_decode_error(p, "", {120, 125}, "truncated");
  for (size_t len = 0; len < good.size(); len += (len < 64 ? 1 : 97))
    EXPECT_THROW(p.decode(good.substr(0, len), {120, 125}, 7), Error) << len;
  expect_decode_error(p, good + "x", {120, 125}, "bytes where the header announces");
  expect_decode_error(p, good, {120, 126}, "15120 elements but the encoding holds 15000");
  expect_decode_error(p, good, {-1, 120}, "size -1 of dimension 0 is negative");
  // Empty, yet its strides would overflow int64 (LibTorch 1.13 crashes on such a tensor).
  expect_decode_error(p, good, {0, int64_t{0xd0000000}, int64_t{0xd0000000}}, "multiply past");

  auto corrupt = [&](size_t at, uint8_t value) {
    std::string b = good;
    b[at] = static_cast<char>(value);
    return b;
  };
  expect_decode_error(p, corrupt(0, 0x00), {120, 125}, "bad magic");
  expect_decode_error(p, corrupt(1, 9), {120, 125}, "version 9");
  expect_decode_error(p, corrupt(2, 7), {120, 125}, "unknown encoding kind");
  expect_decode_error(p, corrupt(3, 77), {120, 125}, "unknown dtype");
  expect_decode_error(p, corrupt(12, 3), {120, 125}, "unknown transform");
  expect_decode_error(p, corrupt(12, 1), {120, 125}, "transformed length");
  expect_decode_error(p, corrupt(13, 5), {120, 125}, "unknown value format");
  expect_decode_error(p, corrupt(14, 0), {120, 125}, "bit width");
  expect_decode_error(p, corrupt(14, 17), {120, 125}, "bit width");
  expect_decode_error(p, corrupt(15, 4), {120, 125}, "flags");
  expect_decode_error(p, corrupt(24 + 7, 0x80), {120, 125}, "value count");

  // Random garbage never crashes.
  std::mt19937_64 rng(3);
  for (int i = 0; i < 2000; ++i) {
    std::string junk(rng() % 64, '\0');
    for (auto& c : junk) c = static_cast<char>(rng());
    if (!junk.empty() && rng() % 2) junk[0] = static_cast<char>(0xFD);
    if (junk.size() > 1 && rng() % 2) junk[1] = 1;
    EXPECT_THROW(p.decode(junk, {3, 4}, 1), Error);
  }
  // Raw encodings are checked too.
  const std::string raw = Pipeline().encode(torch::randn({10}), 0);
  expect_decode_error(p, raw.substr(0, raw.size() - 1), {10}, "raw float32 needs 12 + 10 * 4");
  std::string bad_bool = Pipeline().encode(torch::ones({4}, torch::kBool), 0);
  bad_bool.back() = 2;
  expect_decode_error(p, bad_bool, {4}, "bool value 2");
}

TEST(CodecSpecTest, Describe) {
  EXPECT_EQ(CodecSpec().describe(), "identity");
  EXPECT_EQ(spec("kashin", 0.5, 2).describe(), "kashin+s0.5+q2");
  EXPECT_EQ(spec("hadamard", 0.25, 4).describe(), "hadamard+s0.25+q4");
  CodecSpec f = spec("identity", 1.0, 0);
  f.float16 = true;
  EXPECT_EQ(f.describe(), "identity+f16");
}

TEST(CodecSpecTest, FromConfig) {
  Config cfg = Config::from_string(
      "[codec.up]\ntransform = \"kashin\"\nsubsample = 0.25\nbits = 2\nmin_elements = 5\n"
      "kashin_iterations = 4\nkashin_eta = 0.8\nkashin_delta = 2.0\n");
  CodecSpec s = codec_spec_from_config(cfg, "codec.up");
  EXPECT_EQ(s.transform, "kashin");
  EXPECT_EQ(s.subsample, 0.25);
  EXPECT_EQ(s.bits, 2);
  EXPECT_EQ(s.min_elements, 5);
  EXPECT_EQ(s.kashin_iterations, 4);
  EXPECT_EQ(s.kashin_eta, 0.8);
  EXPECT_EQ(s.kashin_delta, 2.0);
  EXPECT_TRUE(codec_spec_from_config(cfg, "codec.down").lossless());  // defaults

  auto error_of = [](const std::string& toml) -> std::string {
    try {
      codec_spec_from_config(Config::from_string(toml), "codec");
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_NE(error_of("[codec]\ntransform = \"fourier\"\n").find("codec.transform"),
            std::string::npos);
  EXPECT_NE(error_of("[codec]\nsubsample = 0.0\n").find("codec.subsample"), std::string::npos);
  EXPECT_NE(error_of("[codec]\nsubsample = 1.5\n").find("codec.subsample"), std::string::npos);
  EXPECT_NE(error_of("[codec]\nbits = 17\n").find("codec.bits"), std::string::npos);
  EXPECT_NE(error_of("[codec]\nbits = 4\nfloat16 = true\n").find("codec.float16"),
            std::string::npos);
  EXPECT_NE(error_of("[codec]\nmin_elements = -1\n").find("codec.min_elements"),
            std::string::npos);
  EXPECT_NE(error_of("[codec]\nkashin_iterations = 0\n").find("codec.kashin_iterations"),
            std::string::npos);
  EXPECT_NE(error_of("[codec]\nkashin_eta = 0.0\n").find("codec.kashin_eta"), std::string::npos);
  EXPECT_NE(error_of("[codec]\nkashin_delta = -1.0\n").find("codec.kashin_delta"),
            std::string::npos);
  EXPECT_THROW(Pipeline(spec("kashin", 0.0, 2)), Error);
}

}  // namespace
}  // namespace fedpp
