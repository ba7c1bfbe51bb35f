// Model zoo: registry, exact parameter and MAC counts, the FedGKT split, and Federated Dropout
// sub-models (unit slices proven by an index_select / zeroed-weights equivalence).
#include <gtest/gtest.h>

#include <fedpp/core/error.hpp>
#include <fedpp/models/model.hpp>
#include <fedpp/models/resnet.hpp>

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>

namespace fedpp {
namespace {

const std::vector<int64_t> kMnist = {1, 28, 28};
const std::vector<int64_t> kCifar = {3, 32, 32};

// The registry's natural input for a model at image shape `image`: FedGKT server models take
// ResNet-8's feature map {16,H,W}.
ModelSpec spec_for(const std::string& name, std::vector<int64_t> image) {
  if (name.find("_server") != std::string::npos) image[0] = 16;
  return {image, 10};
}

torch::Tensor batch_for(const ModelSpec& s, int64_t b, torch::Dtype dtype = torch::kFloat) {
  return torch::randn({b, s.input_shape[0], s.input_shape[1], s.input_shape[2]},
                      torch::dtype(dtype));
}

std::map<std::string, torch::Tensor> params(const torch::nn::Module& m) {
  std::map<std::string, torch::Tensor> out;
  for (const auto& kv : m.named_parameters()) out[kv.key()] = kv.value();
  return out;
}

std::string error_text(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no fedpp::Error thrown)";
}

TEST(Models, RegistryListsAllModelsInOrder) {
  const std::vector<std::string> expected = {
      "fedavg_cnn", "cnn1", "cnn2", "cnn3", "cnn4", "cnn5", "mlp", "resnet8",
      "resnet56_server", "resnet110_server", "resnet56", "resnet110"};
  EXPECT_EQ(model_names(), expected);
  for (const auto& n : expected) {
    EXPECT_FALSE(model_description(n).empty()) << n;
    EXPECT_EQ(make_model(n, spec_for(n, kCifar))->model_name(), n);
  }
}

TEST(Models, UnknownNameListsKnownNames) {
  const std::string msg = error_text([] { make_model("resnet9000", {kCifar, 10}); });
  EXPECT_NE(msg.find("resnet9000"), std::string::npos) << msg;
  for (const auto& n : model_names()) EXPECT_NE(msg.find(n), std::string::npos) << msg;
  EXPECT_THROW(model_description("nope"), Error);
}

TEST(Models, InputTooSmallNamesModelAndShape) {
  const std::string msg = error_text([] { make_model("cnn1", {{3, 8, 8}, 10}); });
  EXPECT_NE(msg.find("cnn1"), std::string::npos) << msg;
  EXPECT_NE(msg.find("{3,8,8}"), std::string::npos) << msg;
  // fedavg_cnn pads, so 8x8 is fine; 1x1 is not.
  EXPECT_NO_THROW(make_model("fedavg_cnn", {{3, 8, 8}, 10}));
  EXPECT_THROW(make_model("fedavg_cnn", {{3, 1, 1}, 10}), Error);
  EXPECT_THROW(make_model("mlp", {{3, 32}, 10}), Error);
  EXPECT_THROW(make_model("resnet8", {{3, 0, 32}, 10}), Error);
  EXPECT_THROW(make_model("cnn5", {kCifar, 0}), Error);
}

TEST(Models, FedMoeZooCifarParameterCounts) {
  const std::map<std::string, int64_t> expected = {{"cnn1", 2621558},
                                                   {"cnn2", 1815142},
                                                   {"cnn3", 1320558},
                                                   {"cnn4", 1060358},
                                                   {"cnn5", 670058}};
  for (const auto& [name, count] : expected)
    EXPECT_EQ(count_parameters(*make_model(name, {kCifar, 10})), count) << name;
  // The global expert is CNN-5's extractor: everything but FC3.
  int64_t extractor = 0;
  for (const auto& [n, p] : params(*make_model("cnn5", {kCifar, 10})))
    if (n.rfind("fc3.", 0) != 0) extractor += p.numel();
  EXPECT_EQ(extractor, 665048);
}

TEST(Models, FedAvgCnnParameterCount) {
  EXPECT_EQ(count_parameters(*make_model("fedavg_cnn", {kMnist, 10})), 1663370);
}

struct Counts {
  int64_t params, macs, feature_macs, feature_dim;
};

void expect_counts(const std::vector<int64_t>& image,
                   const std::map<std::string, Counts>& table) {
  ASSERT_EQ(table.size(), model_names().size());
  for (const auto& [name, c] : table) {
    const ModelSpec s = spec_for(name, image);
    auto m = make_model(name, s);
    EXPECT_EQ(count_parameters(*m), c.params) << name;
    EXPECT_EQ(m->macs_per_sample(), c.macs) << name;
    EXPECT_EQ(m->feature_macs_per_sample(), c.feature_macs) << name;
    EXPECT_EQ(m->feature_dim(), c.feature_dim) << name;
    // The head is one Linear: feature_dim * classes MACs.
    EXPECT_EQ(c.macs - c.feature_macs, c.feature_dim * s.num_classes) << name;
    m->eval();
    torch::NoGradGuard ng;
    auto x = batch_for(s, 3);
    auto r = m->features(x);
    EXPECT_EQ(r.sizes(), (std::vector<int64_t>{3, c.feature_dim})) << name;
    auto y = m->forward(x);
    EXPECT_EQ(y.sizes(), (std::vector<int64_t>{3, 10})) << name;
    EXPECT_TRUE(torch::allclose(y, m->head(r))) << name;
  }
}

TEST(Models, ExactCountsMnist) {
  expect_counts(kMnist, {{"fedavg_cnn", {1663370, 12273152, 12268032, 512}},
                         {"cnn1", {2044758, 3078600, 3073600, 500}},
                         {"cnn2", {1526342, 2157000, 2152000, 500}},
                         {"cnn3", {1031758, 2066600, 2061600, 500}},
                         {"cnn4", {829158, 1864200, 1859200, 500}},
                         {"cnn5", {525258, 1560600, 1555600, 500}},
                         {"mlp", {199210, 198800, 196800, 200}},
                         {"resnet8", {10298, 7138176, 7137536, 64}},
                         {"resnet56_server", {590858, 66435584, 66433024, 256}},
                         {"resnet110_server", {1147274, 127851008, 127848448, 256}},
                         {"resnet56", {591034, 66548480, 66545920, 256}},
                         {"resnet110", {1147450, 127963904, 127961344, 256}}});
}

TEST(Models, ExactCountsCifar) {
  expect_counts(kCifar, {{"fedavg_cnn", {2156490, 17667072, 17661952, 512}},
                         {"cnn1", {2621558, 4825800, 4820800, 500}},
                         {"cnn2", {1815142, 3385800, 3380800, 500}},
                         {"cnn3", {1320558, 3525800, 3520800, 500}},
                         {"cnn4", {1060358, 3265800, 3260800, 500}},
                         {"cnn5", {670058, 2875800, 2870800, 500}},
                         {"mlp", {656810, 656400, 654400, 200}},
                         {"resnet8", {10586, 9618048, 9617408, 64}},
                         {"resnet56_server", {590858, 86772224, 86769664, 256}},
                         {"resnet110_server", {1147274, 166988288, 166985728, 256}},
                         {"resnet56", {591322, 87214592, 87212032, 256}},
                         {"resnet110", {1147738, 167430656, 167428096, 256}}});
}

TEST(Models, GktCostsMatchThePaperApproximately) {
  auto near = [](double got, double want) { return std::abs(got / want - 1.0) < 0.03; };
  const std::map<std::string, std::pair<double, double>> paper = {
      {"resnet8", {10.6e3, 9.6e6}},
      {"resnet56_server", {591e3, 87e6}},
      {"resnet110_server", {1.15e6, 167e6}}};
  for (const auto& [name, pm] : paper) {
    auto m = make_model(name, spec_for(name, kCifar));
    EXPECT_TRUE(near(count_parameters(*m), pm.first)) << name << " " << count_parameters(*m);
    EXPECT_TRUE(near(m->macs_per_sample(), pm.second)) << name << " " << m->macs_per_sample();
  }
}

TEST(Models, GktSplitComposes) {
  torch::manual_seed(3);
  ResNet8 client({kCifar, 10});
  ResNetServer server("resnet56_server", {{16, 32, 32}, 10}, 6);
  EXPECT_EQ(client.feature_map_shape(), (std::vector<int64_t>{16, 32, 32}));
  EXPECT_EQ(client.feature_map_macs_per_sample(), 32 * 32 * 16 * 3 * 9);
  client.eval();
  server.eval();
  torch::NoGradGuard ng;
  auto x = torch::randn({4, 3, 32, 32});
  auto h = client.feature_map(x);
  EXPECT_EQ(h.sizes(), (std::vector<int64_t>{4, 16, 32, 32}));
  EXPECT_TRUE(torch::allclose(client.forward_from_map(h), client.forward(x)));
  EXPECT_EQ(server.forward(h).sizes(), (std::vector<int64_t>{4, 10}));
  // Through the registry too, and on MNIST-shaped input.
  auto c2 = std::dynamic_pointer_cast<ResNet8>(make_model("resnet8", {kMnist, 62}));
  ASSERT_TRUE(c2);
  EXPECT_EQ(c2->feature_map_shape(), (std::vector<int64_t>{16, 28, 28}));
  auto s2 = make_model("resnet110_server", {c2->feature_map_shape(), 62});
  EXPECT_EQ(s2->forward(c2->feature_map(torch::randn({2, 1, 28, 28}))).sizes(),
            (std::vector<int64_t>{2, 62}));
}

TEST(Models, ResNetTensorNames) {
  const auto client = params(*make_model("resnet8", {kCifar, 10}));
  for (const char* n : {"conv1.weight", "bn1.weight", "bn1.bias", "layer1.0.conv1.weight",
                        "layer1.0.downsample.0.weight", "layer1.0.downsample.1.bias",
                        "layer1.1.conv3.weight", "fc.weight", "fc.bias"})
    EXPECT_TRUE(client.count(n)) << n;
  EXPECT_FALSE(client.count("layer1.1.downsample.0.weight"));
  EXPECT_FALSE(client.count("conv1.bias"));
  const auto server = params(*make_model("resnet56_server", {{16, 32, 32}, 10}));
  EXPECT_FALSE(server.count("conv1.weight"));  // no stem
  EXPECT_EQ(server.at("layer1.0.conv1.weight").sizes(), (std::vector<int64_t>{16, 16, 1, 1}));
  EXPECT_EQ(server.at("layer3.5.conv3.weight").sizes(), (std::vector<int64_t>{256, 64, 1, 1}));
  EXPECT_EQ(server.at("layer2.0.downsample.0.weight").sizes(),
            (std::vector<int64_t>{128, 64, 1, 1}));
  EXPECT_EQ(server.at("fc.weight").sizes(), (std::vector<int64_t>{10, 256}));
  EXPECT_TRUE(params(*make_model("resnet56", {kCifar, 10})).count("layer3.5.bn3.weight"));
}

TEST(Models, ResNetsDoNotSupportDropout) {
  auto m = make_model("resnet8", {kCifar, 10});
  EXPECT_TRUE(m->unit_groups().empty());
  const std::string msg = error_text([&] { m->with_widths({}); });
  EXPECT_EQ(msg, "model resnet8 does not support Federated Dropout");
}

TEST(Models, ConvNetTensorNamesAndUnitGroups) {
  auto m = make_model("fedavg_cnn", {kMnist, 10});
  std::vector<std::string> names;
  for (const auto& kv : m->named_parameters()) names.push_back(kv.key());
  EXPECT_EQ(names, (std::vector<std::string>{"conv1.weight", "conv1.bias", "conv2.weight",
                                              "conv2.bias", "fc1.weight", "fc1.bias",
                                              "fc2.weight", "fc2.bias"}));
  const auto g = m->unit_groups();
  ASSERT_EQ(g.size(), 3u);
  EXPECT_EQ(g[0].name, "conv1");
  EXPECT_EQ(g[0].size, 32);
  ASSERT_EQ(g[0].slices.size(), 3u);
  EXPECT_EQ(g[0].slices[2].tensor, "conv2.weight");
  EXPECT_EQ(g[0].slices[2].dim, 1);
  EXPECT_EQ(g[1].name, "conv2");
  EXPECT_EQ(g[1].size, 64);
  EXPECT_EQ(g[1].slices[2].tensor, "fc1.weight");
  EXPECT_EQ(g[1].slices[2].dim, 1);
  EXPECT_EQ(g[1].slices[2].block, 7 * 7);
  EXPECT_EQ(g[2].name, "fc1");
  EXPECT_EQ(g[2].size, 512);
  EXPECT_EQ(g[2].slices[2].tensor, "fc2.weight");

  const auto cnn = make_model("cnn1", {kCifar, 10})->unit_groups();
  ASSERT_EQ(cnn.size(), 4u);  // conv1, conv2, fc1, fc2
  EXPECT_EQ(cnn[1].slices[2].block, 5 * 5);
  EXPECT_EQ(cnn[3].name, "fc2");
  EXPECT_EQ(cnn[3].size, 500);
  EXPECT_EQ(cnn[3].slices[2].tensor, "fc3.weight");

  const auto mlp = make_model("mlp", {kMnist, 10})->unit_groups();
  ASSERT_EQ(mlp.size(), 2u);  // input pixels and classes are never dropped
  EXPECT_EQ(mlp[0].name, "fc1");
  EXPECT_EQ(mlp[1].name, "fc2");
}

TEST(Models, WithWidthsRejectsBadWidths) {
  auto m = make_model("fedavg_cnn", {kMnist, 10});
  EXPECT_THROW(m->with_widths({16, 32}), Error);
  EXPECT_THROW(m->with_widths({16, 0, 100}), Error);
  EXPECT_THROW(m->with_widths({16, 65, 100}), Error);
}

// Indices of units `units` (each `block` wide) along a dimension.
torch::Tensor expand_units(const torch::Tensor& units, int64_t block) {
  return (units.unsqueeze(1) * block + torch::arange(block, torch::kLong).unsqueeze(0))
      .flatten();
}

// Cuts a random sub-model out of `name`, copies the kept weights by index_select along the unit
// slices, and checks it computes what the full model computes with the dropped units' outgoing
// weights (the dim-1 slices) zeroed.
void check_submodel(const std::string& name, const std::vector<int64_t>& image) {
  SCOPED_TRACE(name);
  torch::manual_seed(11);
  const ModelSpec spec{image, 10};
  auto full = make_model(name, spec);
  const auto groups = full->unit_groups();
  ASSERT_FALSE(groups.empty());
  std::vector<int64_t> widths;
  std::vector<torch::Tensor> kept, dropped;
  for (const auto& g : groups) {
    const int64_t w = std::max<int64_t>(1, g.size * 3 / 8);
    auto perm = torch::randperm(g.size, torch::kLong);
    widths.push_back(w);
    kept.push_back(std::get<0>(perm.slice(0, 0, w).sort()));
    dropped.push_back(perm.slice(0, w));
  }
  auto sub = full->with_widths(widths);
  EXPECT_EQ(sub->model_name(), name);
  EXPECT_LT(count_parameters(*sub), count_parameters(*full));
  const auto sub_groups = sub->unit_groups();
  ASSERT_EQ(sub_groups.size(), groups.size());
  for (size_t i = 0; i < groups.size(); ++i) EXPECT_EQ(sub_groups[i].size, widths[i]);

  full->to(torch::kDouble);
  sub->to(torch::kDouble);
  auto fp = params(*full);
  auto sp = params(*sub);
  ASSERT_EQ(fp.size(), sp.size());
  torch::NoGradGuard ng;
  // Every slice describes its tensor's shape: size(dim) = units * block, full and sub.
  for (size_t i = 0; i < groups.size(); ++i)
    for (const auto& s : groups[i].slices) {
      ASSERT_TRUE(fp.count(s.tensor) && sp.count(s.tensor)) << s.tensor;
      EXPECT_EQ(fp[s.tensor].size(s.dim), groups[i].size * s.block) << s.tensor;
      EXPECT_EQ(sp[s.tensor].size(s.dim), widths[i] * s.block) << s.tensor;
    }
  // Sub-model weights = full weights at the kept units.
  for (auto& [tname, p] : sp) {
    torch::Tensor t = fp.at(tname);
    for (size_t i = 0; i < groups.size(); ++i)
      for (const auto& s : groups[i].slices)
        if (s.tensor == tname) t = t.index_select(s.dim, expand_units(kept[i], s.block));
    ASSERT_EQ(t.sizes(), p.sizes()) << tname;
    p.copy_(t);
  }
  // Reference: the full model with the dropped units' outgoing weights zeroed.
  for (size_t i = 0; i < groups.size(); ++i)
    for (const auto& s : groups[i].slices)
      if (s.dim == 1) fp[s.tensor].index_fill_(1, expand_units(dropped[i], s.block), 0.0);
  full->eval();
  sub->eval();
  auto x = batch_for(spec, 5, torch::kDouble);
  auto ys = sub->forward(x);
  auto yf = full->forward(x);
  EXPECT_EQ(ys.sizes(), (std::vector<int64_t>{5, 10}));
  EXPECT_GT(ys.abs().max().item<double>(), 0.0);
  EXPECT_TRUE(torch::allclose(ys, yf, 1e-10, 1e-12))
      << "max diff " << (ys - yf).abs().max().item<double>();
}

TEST(Models, SubModelsMatchFullModelWithDroppedUnitsZeroed) {
  check_submodel("fedavg_cnn", kMnist);
  check_submodel("fedavg_cnn", kCifar);
  for (const char* n : {"cnn1", "cnn2", "cnn3", "cnn4", "cnn5"}) {
    check_submodel(n, kCifar);
    check_submodel(n, kMnist);
  }
  check_submodel("mlp", kMnist);
}

TEST(Models, SubModelShapesShrink) {
  auto sub = make_model("fedavg_cnn", {kMnist, 10})->with_widths({8, 16, 128});
  auto p = params(*sub);
  EXPECT_EQ(p.at("conv1.weight").sizes(), (std::vector<int64_t>{8, 1, 5, 5}));
  EXPECT_EQ(p.at("conv2.weight").sizes(), (std::vector<int64_t>{16, 8, 5, 5}));
  EXPECT_EQ(p.at("fc1.weight").sizes(), (std::vector<int64_t>{128, 16 * 49}));
  EXPECT_EQ(p.at("fc2.weight").sizes(), (std::vector<int64_t>{10, 128}));
  EXPECT_EQ(sub->feature_dim(), 128);
  EXPECT_EQ(sub->macs_per_sample(),
            28 * 28 * 8 * 25 + 14 * 14 * 16 * 8 * 25 + 16 * 49 * 128 + 128 * 10);
}

TEST(Models, SameSeedSameInitialisation) {
  for (const char* n : {"fedavg_cnn", "resnet8"}) {
    torch::manual_seed(5);
    auto a = params(*make_model(n, {kCifar, 10}));
    torch::manual_seed(5);
    auto b = params(*make_model(n, {kCifar, 10}));
    for (const auto& [k, v] : a) EXPECT_TRUE(torch::equal(v, b.at(k))) << n << " " << k;
  }
}

TEST(Models, SgdStepsReduceLossOnAFixedBatch) {
  for (const char* n : {"fedavg_cnn", "cnn5", "mlp", "resnet8"}) {
    torch::manual_seed(7);
    const ModelSpec s{kMnist, 10};
    auto m = make_model(n, s);
    m->train();
    torch::optim::SGD opt(m->parameters(), torch::optim::SGDOptions(0.05).momentum(0.9));
    auto x = batch_for(s, 16);
    auto y = torch::randint(0, 10, {16}, torch::kLong);
    double first = 0, last = 0;
    for (int step = 0; step < 8; ++step) {
      opt.zero_grad();
      auto loss = torch::nn::functional::cross_entropy(m->forward(x), y);
      loss.backward();
      opt.step();
      (step == 0 ? first : last) = loss.item<double>();
    }
    EXPECT_LT(last, first) << n;
  }
}

}  // namespace
}  // namespace fedpp
