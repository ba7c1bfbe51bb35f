#include <gtest/gtest.h>

#include <filesystem>
#include <limits>

#include "fedpp/algorithms/common/averaging.hpp"
#include "fedpp/algorithms/common/global_model.hpp"
#include "fedpp/codec/codec.hpp"
#include "fedpp/core/error.hpp"
#include "fedpp/fl/wire.hpp"
#include "fedpp/runtime/sampling.hpp"
#include "fedpp/runtime/state_store.hpp"

using namespace fedpp;

namespace {
Reply reply(int64_t id, double n, std::vector<float> a, std::vector<float> b) {
  Reply r;
  r.client_id = id;
  r.message.tensors.set("w", torch::tensor(a).reshape({2, 1}));
  r.message.tensors.set("b", torch::tensor(b));
  r.message.metrics["num_samples"] = n;
  return r;
}
}  // namespace

TEST(FedAvg, SampleWeightedAverageByHand) {
  // (1 * [1,2] + 3 * [5,6]) / 4 = [4, 5]; (1 * [0] + 3 * [8]) / 4 = [6].
  std::vector<Reply> rs = {reply(0, 1, {1, 2}, {0}), reply(1, 3, {5, 6}, {8})};
  NamedTensors like;
  like.set("w", torch::zeros({2, 1}));
  like.set("b", torch::zeros({1}));
  auto avg = weighted_average(rs, like);
  EXPECT_TRUE(torch::allclose(avg.at("w"), torch::tensor({4.f, 5.f}).reshape({2, 1})));
  EXPECT_FLOAT_EQ(avg.at("b").item<float>(), 6.f);
  EXPECT_EQ(avg.names(), like.names());
}

TEST(FedAvg, AverageRejectsWrongShape) {
  std::vector<Reply> rs = {reply(0, 1, {1, 2}, {0})};
  NamedTensors like;
  like.set("w", torch::zeros({1, 2}));
  like.set("b", torch::zeros({1}));
  EXPECT_THROW(weighted_average(rs, like), Error);
}

TEST(FedProx, ProximalTermByHand) {
  std::vector<torch::Tensor> p = {torch::tensor({1.f, 2.f}), torch::tensor({3.f})};
  std::vector<torch::Tensor> a = {torch::tensor({0.f, 0.f}), torch::tensor({1.f})};
  // (1 + 4) + 4 = 9
  EXPECT_FLOAT_EQ(proximal_term(p, a).item<float>(), 9.f);
}

// all_finite looks at every element of every floating tensor, whatever its dtype or layout.
TEST(NamedTensorsTest, AllFiniteFindsEveryNaNAndInf) {
  const float kBad[] = {std::numeric_limits<float>::quiet_NaN(),
                        std::numeric_limits<float>::infinity(),
                        -std::numeric_limits<float>::infinity()};
  for (auto dtype : {torch::kFloat, torch::kDouble, torch::kHalf, torch::kBFloat16}) {
    for (int64_t n : {1, 7, 64, 1001}) {
      for (int64_t at : {int64_t{0}, n / 2, n - 1}) {
        for (float bad : kBad) {
          torch::Tensor v = torch::randn({n}).to(dtype);
          NamedTensors ok;
          ok.set("labels", torch::arange(3));
          ok.set("v", v);
          EXPECT_TRUE(ok.all_finite());
          v[at] = bad;
          EXPECT_FALSE(ok.all_finite()) << dtype << " n " << n << " at " << at << " " << bad;
        }
      }
    }
  }
  NamedTensors edge;  // the largest finite values, denormals and -0 are finite
  edge.set("f", torch::tensor({std::numeric_limits<float>::max(),
                               -std::numeric_limits<float>::max(),
                               std::numeric_limits<float>::denorm_min(), -0.0f}));
  edge.set("d", torch::tensor({std::numeric_limits<double>::max(),
                               std::numeric_limits<double>::denorm_min()},
                              torch::kDouble));
  EXPECT_TRUE(edge.all_finite());
  torch::Tensor m = torch::randn({6, 5});
  NamedTensors strided;
  strided.set("t", m.t());  // not contiguous
  EXPECT_TRUE(strided.all_finite());
  m[5][4] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_FALSE(strided.all_finite());
}

TEST(Wire, LosslessRoundTripWithMetricsAndConfig) {
  Message m;
  m.tensors.set("a", torch::randn({3, 4}));
  m.tensors.set("labels", torch::arange(5, torch::kLong));
  m.metrics["num_samples"] = 12;
  m.config["phase"] = "fit";
  Pipeline p;
  auto bytes = encode_message(m, p, 42);
  auto back = decode_message(bytes, 42);
  EXPECT_TRUE(torch::equal(back.tensors.at("a"), m.tensors.at("a")));
  EXPECT_TRUE(torch::equal(back.tensors.at("labels"), m.tensors.at("labels")));
  EXPECT_EQ(back.metric("num_samples"), 12);
  EXPECT_EQ(back.config_value("phase"), "fit");
  // The encoded size is dominated by the float32 payload.
  EXPECT_GE(bytes.size(), 12u * 4u + 5u * 8u);
  EXPECT_LE(bytes.size(), 12u * 4u + 5u * 8u + 200u);
}

TEST(Wire, LossyPipelinesSendUpdatesAgainstTheReference) {
  NamedTensors ref;
  ref.set("w", torch::full({100}, 3.0f));
  Message m;
  m.tensors.set("w", torch::full({100}, 3.5f));
  CodecSpec lossy;
  lossy.bits = 8;
  lossy.min_elements = 0;
  auto bytes = encode_message(m, Pipeline(lossy), 1, &ref);
  auto back = decode_message(bytes, 1, &ref);
  // The update (0.5 everywhere) is constant, so 8-bit quantisation carries it exactly.
  EXPECT_TRUE(torch::allclose(back.tensors.at("w"), m.tensors.at("w")));
  EXPECT_TRUE(torch::equal(ref.at("w"), torch::full({100}, 3.0f)));  // the reference is untouched
  EXPECT_THROW(decode_message(bytes, 1, nullptr), Error);  // update without its reference
  // Lossless pipelines send the values themselves, bit-exact and in their own dtype.
  m.tensors.set("w", torch::rand({100}, torch::kDouble));
  ref.set("w", torch::rand({100}, torch::kDouble));
  auto plain = decode_message(encode_message(m, Pipeline(), 1, &ref), 1, nullptr);
  EXPECT_TRUE(torch::equal(plain.tensors.at("w"), m.tensors.at("w")));
}

TEST(Wire, MalformedBytesRejected) {
  EXPECT_THROW(decode_message(std::string("\xff\xff\xff garbage", 12), 0), Error);
  Message m;
  m.tensors.set("a", torch::randn({64}));
  auto bytes = encode_message(m, Pipeline(), 3);
  EXPECT_THROW(decode_message(bytes.substr(0, bytes.size() - 7), 3), Error);
}

// A message is checked against its limits on the tensor headers, before any payload expands.
TEST(Wire, LimitsRefuseBombsAndWrongShapesBeforeDecoding) {
  Message m;
  m.tensors.set("w", torch::randn({100, 10}));
  m.tensors.set("bomb", torch::zeros({1 << 22}));  // 16 MB as float32
  CodecSpec one_bit;
  one_bit.bits = 1;
  auto bytes = encode_message(m, Pipeline(one_bit), 4);
  EXPECT_LT(bytes.size(), 600000u);  // half a megabyte on the wire
  DecodeLimits cap;
  cap.max_decoded_bytes = 1 << 20;
  try {
    decode_message(bytes, 4, nullptr, cap);
    FAIL() << "expected the cap to refuse the message";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'bomb'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("refused before decoding"), std::string::npos) << e.what();
  }
  cap.max_decoded_bytes = 32 << 20;
  EXPECT_EQ(decode_message(bytes, 4, nullptr, cap).tensors.size(), 2u);
  NamedTensors sent;
  sent.set("w", torch::zeros({10, 100}));
  DecodeLimits shapes;
  shapes.shapes = &sent;
  try {
    decode_message(bytes, 4, nullptr, shapes);
    FAIL() << "expected a shape mismatch";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("tensor 'w' has shape [100, 10], but was sent as [10, 100]"),
              std::string::npos) << e.what();
  }
}

// A declared reply schema (ServerAlgorithm::reply_schema): exactly these tensors, checked on
// the headers; a missing, an extra or a renamed tensor is refused before any payload is read.
TEST(Wire, AnExactSchemaRefusesMissingAndExtraTensors) {
  NamedTensors want;
  want.set("w", torch::zeros({4, 3}));
  want.set("b", torch::zeros({3}));
  DecodeLimits exact;
  exact.shapes = &want;
  exact.exact = true;
  auto bytes_of = [](const std::map<std::string, torch::Tensor>& t) {
    Message m;
    for (const auto& [k, v] : t) m.tensors.set(k, v);
    return encode_message(m, Pipeline(), 1);
  };
  auto refused = [&](const std::string& bytes, const std::string& why) {
    try {
      decode_message(bytes, 1, nullptr, exact);
      ADD_FAILURE() << "expected a refusal mentioning " << why;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(why), std::string::npos) << e.what();
    }
  };
  EXPECT_EQ(decode_message(bytes_of({{"w", torch::ones({4, 3})}, {"b", torch::ones({3})}}), 1,
                           nullptr, exact).tensors.size(), 2u);
  refused(bytes_of({{"w", torch::ones({4, 3})}}), "carries 1 tensors where exactly 2");
  refused(bytes_of({{"w", torch::ones({4, 3})}, {"b", torch::ones({3})}, {"x", torch::ones({1})}}),
          "tensor 'x' is not one the message may carry");
  refused(bytes_of({{"w", torch::ones({4, 3})}, {"c", torch::ones({3})}}),
          "tensor 'c' is not one the message may carry");
  refused(bytes_of({{"w", torch::ones({4, 3})}, {"b", torch::ones({4})}}), "has shape [4]");
  Message failed;  // exempt: a report that carries no tensors, rejected for its own reason
  failed.config["fit_error"] = "diverged";
  exact.exempt_config_key = "fit_error";
  EXPECT_EQ(decode_message(encode_message(failed, Pipeline(), 1), 1, nullptr, exact).tensors.size(),
            0u);
  exact.exact = false;  // open: other names pass, sent names keep their shapes
  EXPECT_EQ(decode_message(bytes_of({{"w", torch::ones({4, 3})}, {"c", torch::ones({3})}}), 1,
                           nullptr, exact).tensors.size(), 2u);
}

TEST(Sampling, FractionSeededSortedDistinct) {
  auto a = sample_clients(100, 0.1, 7, 3);
  auto b = sample_clients(100, 0.1, 7, 3);
  auto c = sample_clients(100, 0.1, 7, 4);
  ASSERT_EQ(a.size(), 10u);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  EXPECT_TRUE(std::is_sorted(a.begin(), a.end()));
  EXPECT_EQ(std::adjacent_find(a.begin(), a.end()), a.end());
  EXPECT_EQ(sample_clients(10, 1.0, 7, 1).size(), 10u);
  EXPECT_EQ(sample_clients(10, 0.01, 7, 1).size(), 1u);
}

TEST(StateStore, MemoryAndDiskKeepState) {
  auto dir = testing::TempDir() + "/fedpp_state_test";
  std::filesystem::remove_all(dir);
  std::vector<std::unique_ptr<StateStore>> stores;
  stores.push_back(make_memory_store(3));
  stores.push_back(make_disk_store(dir));
  for (auto& store : stores) {
    EXPECT_TRUE(store->load(1).empty());
    ClientState s;
    s.tensors.set("private.w", torch::arange(6, torch::kFloat).reshape({2, 3}));
    s.scalars["rounds_seen"] = 4;
    store->save(1, s);
    auto back = store->load(1);
    EXPECT_TRUE(torch::equal(back.tensors.at("private.w"), s.tensors.at("private.w")));
    EXPECT_EQ(back.scalars.at("rounds_seen"), 4);
    EXPECT_GT(store->bytes(), 0);
  }
}

TEST(Registry, UserAlgorithmsRegisterOnce) {
  EXPECT_EQ(find_algorithm("fedavg").name, "fedavg");
  AlgorithmInfo mine = find_algorithm("fedavg");
  mine.name = "my_fedavg_copy";
  register_algorithm(mine);
  EXPECT_EQ(find_algorithm("my_fedavg_copy").name, "my_fedavg_copy");
  EXPECT_THROW(register_algorithm(mine), Error);
  try {
    find_algorithm("nope");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("fedavg"), std::string::npos);
  }
}
