// Federated Dropout: sub-model extraction and scatter-back on hand-checkable layers, sub-model
// equivalence with the full model with dropped units zeroed, and short simulations (bytes and
// client multiply-adds shrink with the rate, rate 0 is FedAvg exactly, it learns).
#include <gtest/gtest.h>

#include <filesystem>

#include "fedpp/algorithms/feddropout.hpp"
#include "fedpp/algorithms/submodel.hpp"
#include "fedpp/core/config.hpp"
#include "fedpp/core/error.hpp"
#include "fedpp/fl/training.hpp"
#include "fedpp/models/zoo.hpp"
#include "fedpp/runtime/simulation.hpp"
#include "toy.hpp"

using namespace fedpp;
using fedpp::toy::toy_config;
using fedpp::toy::toy_data;
using torch::indexing::Slice;

namespace {

// Global weights whose every entry is distinct: tensor k holds 1000*k + 0, 1, 2, ...
NamedTensors numbered(const torch::nn::Module& m) {
  NamedTensors out;
  double k = 1;
  for (const auto& [name, t] : module_state(m)) {
    out.set(name, torch::arange(t.numel(), torch::kFloat).view(t.sizes()) + 1000 * k);
    k += 1;
  }
  return out;
}

torch::Tensor idx(std::vector<int64_t> v) { return torch::tensor(v, torch::kLong); }

// MLP on 1x2x2 inputs (4 features), hidden widths 4 and 3, 2 classes.
std::shared_ptr<ConvNet> tiny_mlp() {
  std::shared_ptr<ConvNet> m;
  with_seeded_torch(0, [&] {
    m = std::make_shared<ConvNet>("tiny", ModelSpec{{1, 2, 2}, 2},
                                  ConvNetConfig{{}, false, {4, 3}});
  });
  return m;
}

std::vector<Row> without_timing(std::vector<Row> rows) {
  for (auto& r : rows)
    for (auto it = r.begin(); it != r.end();)
      it = it->first.size() > 2 && it->first.substr(it->first.size() - 2) == "_s" ? r.erase(it)
                                                                                  : std::next(it);
  return rows;
}

AlgorithmSetup setup_for(const std::string& model, const std::string& extra) {
  AlgorithmSetup s;
  s.cfg = Config::from_string("[model]\nname = \"" + model + "\"\n" + extra);
  s.spec = ModelSpec{{1, 28, 28}, 10};
  s.num_clients = 4;
  s.seed = 7;
  return s;
}

}  // namespace

TEST(Submodel, KeptUnitsAndSeededSelection) {
  EXPECT_EQ(kept_units(512, 0.0), 512);
  EXPECT_EQ(kept_units(512, 0.25), 384);
  EXPECT_EQ(kept_units(32, 0.5), 16);
  EXPECT_EQ(kept_units(3, 0.9), 1);  // never empty
  auto groups = tiny_mlp()->unit_groups();
  auto a = random_selection(groups, 0.5, 11), b = random_selection(groups, 0.5, 11);
  EXPECT_EQ(a.kept, b.kept);
  EXPECT_EQ(a.widths(), (std::vector<int64_t>{2, 2}));
  for (const auto& k : a.kept) EXPECT_TRUE(std::is_sorted(k.begin(), k.end()));
  bool differs = false;
  for (uint64_t s = 12; s < 20; ++s) differs |= random_selection(groups, 0.5, s).kept != a.kept;
  EXPECT_TRUE(differs);
  EXPECT_EQ(widths_from_string(widths_to_string({3, 16, 200}), "w"),
            (std::vector<int64_t>{3, 16, 200}));
  EXPECT_THROW(widths_from_string("3,x", "w"), Error);
  EXPECT_THROW(widths_from_string("", "w"), Error);
}

TEST(Submodel, ExtractTakesExactRowsAndColumnsOfTinyMlp) {
  auto m = tiny_mlp();
  auto g = numbered(*m);
  UnitSelection sel{{{1, 3}, {0, 2}}};
  auto sub = extract_submodel(g, m->unit_groups(), sel);
  // fc1: rows 1,3 (inputs kept); fc2: rows 0,2 and columns 1,3; fc3: columns 0,2 (classes kept).
  EXPECT_TRUE(sub.at("fc1.weight").equal(g.at("fc1.weight").index_select(0, idx({1, 3}))));
  EXPECT_TRUE(sub.at("fc1.bias").equal(g.at("fc1.bias").index_select(0, idx({1, 3}))));
  EXPECT_TRUE(sub.at("fc2.weight").equal(
      g.at("fc2.weight").index_select(0, idx({0, 2})).index_select(1, idx({1, 3}))));
  EXPECT_TRUE(sub.at("fc2.bias").equal(g.at("fc2.bias").index_select(0, idx({0, 2}))));
  EXPECT_TRUE(sub.at("fc3.weight").equal(g.at("fc3.weight").index_select(1, idx({0, 2}))));
  EXPECT_TRUE(sub.at("fc3.bias").equal(g.at("fc3.bias")));
  // By hand: fc2.weight is 3x4 numbered 3000 + 4*row + col.
  EXPECT_FLOAT_EQ(sub.at("fc2.weight")[1][0].item<float>(), 3000 + 4 * 2 + 1);
  EXPECT_FLOAT_EQ(sub.at("fc2.weight")[0][1].item<float>(), 3000 + 4 * 0 + 3);
  // The layout is what with_widths builds.
  auto small = m->with_widths(sel.widths());
  load_module_state(*small, sub);  // throws on any shape mismatch
  EXPECT_THROW(extract_submodel(g, m->unit_groups(), UnitSelection{{{1, 4}, {0}}}), Error);
}

TEST(Submodel, FlattenBlockTakesWholeFeatureMaps) {
  // 3 conv filters with same padding on 1x8x8, pooled to 4x4: each filter owns 16 columns of fc1.
  std::shared_ptr<ConvNet> m;
  with_seeded_torch(0, [&] {
    m = std::make_shared<ConvNet>("c", ModelSpec{{1, 8, 8}, 2}, ConvNetConfig{{3}, true, {5}});
  });
  auto g = numbered(*m);
  UnitSelection sel{{{0, 2}, {1, 2, 4}}};
  auto sub = extract_submodel(g, m->unit_groups(), sel);
  std::vector<int64_t> cols;
  for (int64_t c : {0, 2})
    for (int64_t j = 0; j < 16; ++j) cols.push_back(c * 16 + j);
  EXPECT_TRUE(sub.at("conv1.weight").equal(g.at("conv1.weight").index_select(0, idx({0, 2}))));
  EXPECT_TRUE(sub.at("fc1.weight").equal(
      g.at("fc1.weight").index_select(0, idx({1, 2, 4})).index_select(1, idx(cols))));
  EXPECT_EQ(sub.at("fc1.weight").sizes(), (std::vector<int64_t>{3, 32}));
}

TEST(Submodel, ScatterBackAveragesPerEntryOverHolders) {
  auto m = tiny_mlp();
  auto groups = m->unit_groups();
  auto g = numbered(*m);
  UnitSelection a{{{0, 1}, {0, 1}}}, b{{{1, 2}, {1, 2}}};
  // Client a's trained values are all 10, client b's all 40; weights 1 and 3.
  auto sa = extract_submodel(g, groups, a), sb = extract_submodel(g, groups, b);
  for (auto& [n, t] : sa) t = torch::full_like(t, 10.0);
  for (auto& [n, t] : sb) t = torch::full_like(t, 40.0);
  SubmodelAverager avg(g, groups);
  avg.add(sa, a, 1.0);
  avg.add(sb, b, 3.0);
  auto out = avg.result();
  const auto& w1 = out.at("fc1.weight");  // rows: 0 only a, 1 both, 2 only b, 3 neither
  EXPECT_TRUE(w1[0].equal(torch::full({4}, 10.0f)));
  EXPECT_TRUE(w1[1].equal(torch::full({4}, 32.5f)));  // (1*10 + 3*40) / 4
  EXPECT_TRUE(w1[2].equal(torch::full({4}, 40.0f)));
  EXPECT_TRUE(w1[3].equal(g.at("fc1.weight")[3]));    // never held: unchanged
  const auto& w2 = out.at("fc2.weight");  // rows = fc2 units, columns = fc1 units
  EXPECT_FLOAT_EQ(w2[0][0].item<float>(), 10.0f);
  EXPECT_FLOAT_EQ(w2[1][1].item<float>(), 32.5f);
  EXPECT_FLOAT_EQ(w2[1][0].item<float>(), 10.0f);  // row 1 by both, column 0 only by a
  EXPECT_FLOAT_EQ(w2[2][2].item<float>(), 40.0f);
  // Row 0 only by a, column 2 only by b: nobody held the entry.
  EXPECT_FLOAT_EQ(w2[0][2].item<float>(), g.at("fc2.weight")[0][2].item<float>());
  EXPECT_FLOAT_EQ(w2[1][3].item<float>(), g.at("fc2.weight")[1][3].item<float>());  // unit 3 of fc1
  const auto& w3 = out.at("fc3.weight");  // columns = fc2 units, classes always kept
  EXPECT_TRUE(w3.index({Slice(), 0}).equal(torch::full({2}, 10.0f)));
  EXPECT_TRUE(w3.index({Slice(), 1}).equal(torch::full({2}, 32.5f)));
  EXPECT_TRUE(w3.index({Slice(), 2}).equal(torch::full({2}, 40.0f)));
  EXPECT_TRUE(out.at("fc3.bias").equal(torch::full({2}, 32.5f)));
  // A reply whose shapes do not fit its selection is refused.
  SubmodelAverager bad(g, groups);
  EXPECT_THROW(bad.add(sa, UnitSelection{{{0}, {0, 1}}}, 1.0), Error);
}

TEST(Submodel, FullSelectionsReproduceWeightedAverageExactly) {
  auto m = make_model_seeded("mlp", ModelSpec{{1, 8, 8}, 4}, 5);
  auto g = module_state(*m).clone();
  auto groups = m->unit_groups();
  std::vector<Reply> replies;
  SubmodelAverager avg(g, groups);
  for (int k = 0; k < 3; ++k) {
    Reply r;
    r.client_id = k;
    for (const auto& [n, t] : g)
      r.message.tensors.set(n, t + 0.1f * (k + 1) * torch::sin(t * (k + 3)));
    r.message.metrics["num_samples"] = 17.0 + 5 * k;
    avg.add(r.message.tensors, full_selection(groups), r.message.metrics["num_samples"]);
    replies.push_back(r);
  }
  auto a = avg.result(), b = weighted_average(replies, g);
  for (const auto& [n, t] : a) EXPECT_TRUE(t.equal(b.at(n))) << n;
}

TEST(Submodel, SubModelComputesLikeFullModelWithDroppedUnitsZeroed) {
  for (const std::string name : {"fedavg_cnn", "cnn3", "mlp"}) {
    auto full = make_model_seeded(name, ModelSpec{{1, 28, 28}, 10}, 3);
    auto groups = full->unit_groups();
    auto sel = random_selection(groups, 0.5, 99);
    auto sub_model = full->with_widths(sel.widths());
    load_module_state(*sub_model, extract_submodel(module_state(*full), groups, sel));
    // Zero the dropped units' own weights and biases: after ReLU (and pooling) they output 0.
    {
      torch::NoGradGuard ng;
      auto st = module_state(*full);
      for (size_t gi = 0; gi < groups.size(); ++gi) {
        std::vector<int64_t> dropped;
        for (int64_t u = 0; u < groups[gi].size; ++u)
          if (!std::binary_search(sel.kept[gi].begin(), sel.kept[gi].end(), u))
            dropped.push_back(u);
        for (const std::string t : {groups[gi].name + ".weight", groups[gi].name + ".bias"})
          st.at(t).index_fill_(0, idx(dropped), 0.0);
      }
    }
    auto gen = at::detail::createCPUGenerator(4);
    auto x = torch::randn({8, 1, 28, 28}, gen);
    torch::NoGradGuard ng;
    auto ys = sub_model->forward(x), yf = full->forward(x);
    EXPECT_TRUE(torch::allclose(ys, yf, 1e-4, 1e-5)) << name << ": max diff "
                                                     << (ys - yf).abs().max().item<float>();
    // Half of every hidden layer: a quarter of the hidden-to-hidden multiply-adds, half of the
    // input layer's (the MLP's 784 x 200 dominates its count).
    EXPECT_LT(sub_model->macs_per_sample(), full->macs_per_sample() / 2) << name;
  }
}

TEST(FedDropout, ServerSendsSubModelsAndRemembersSelections) {
  auto s = setup_for("mlp", "[feddropout]\nrate = 0.5\n");
  FedDropoutServer server(s);
  auto m0 = server.configure_fit(1, 0), m1 = server.configure_fit(1, 1);
  EXPECT_EQ(m0.config.at(kDropoutWidthsKey), "100,100");
  EXPECT_EQ(m0.tensors.at("fc2.weight").sizes(), (std::vector<int64_t>{100, 100}));
  EXPECT_NE(server.selection(1, 0).kept, server.selection(1, 1).kept);
  EXPECT_TRUE(m0.tensors.at("fc1.weight").equal(
      server.global().at("fc1.weight").index_select(0, idx(server.selection(1, 0).kept[0]))));
  EXPECT_THROW(server.selection(1, 2), Error);
  server.configure_fit(2, 0);  // a new round forgets the old one
  EXPECT_THROW(server.selection(1, 0), Error);

  auto shared = setup_for("mlp", "[feddropout]\nrate = 0.5\nshared = true\n");
  FedDropoutServer sh(shared);
  sh.configure_fit(1, 0);
  sh.configure_fit(1, 3);
  EXPECT_EQ(sh.selection(1, 0).kept, sh.selection(1, 3).kept);
  const auto round1 = sh.selection(1, 0).kept;
  sh.configure_fit(2, 0);
  EXPECT_NE(sh.selection(2, 0).kept, round1);
}

TEST(FedDropout, ConfigErrorsNameTheKey) {
  try {
    FedDropoutServer bad(setup_for("resnet8", "[feddropout]\nrate = 0.5\n"));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("feddropout.rate"), std::string::npos) << e.what();
  }
  EXPECT_NO_THROW(FedDropoutServer(setup_for("resnet8", "[feddropout]\nrate = 0\n")));
  EXPECT_THROW(FedDropoutServer(setup_for("mlp", "[feddropout]\nrate = 1.0\n")), Error);
}

TEST(FedDropout, BytesAndClientMacsShrinkWithTheRate) {
  auto data = toy_data(4);
  std::vector<Row> last;
  for (double rate : {0.0, 0.25, 0.5}) {
    auto cfg = toy_config("[algorithm]\nname = \"feddropout\"\n[feddropout]\nrate = " +
                          std::to_string(rate) + "\n");
    cfg.set("rounds=1");
    last.push_back(Simulation(cfg, data).run().back());
  }
  // mlp on 8x8, 4 classes: 64*w + w*w + 4*w weights (plus biases) for hidden width w.
  auto weights = [](double w) { return 64 * w + w * w + 4 * w; };
  for (const char* col : {"bytes_down", "bytes_up", "client_macs"}) {
    EXPECT_GT(last[0].at(col), last[1].at(col)) << col;
    EXPECT_GT(last[1].at(col), last[2].at(col)) << col;
    EXPECT_NEAR(last[2].at(col) / last[0].at(col), weights(100) / weights(200), 0.01) << col;
    EXPECT_NEAR(last[1].at(col) / last[0].at(col), weights(150) / weights(200), 0.01) << col;
  }
}

TEST(FedDropout, RateZeroIsFedAvgExactly) {
  auto data = toy_data(4);
  auto fedavg = without_timing(Simulation(toy_config(), data).run());
  auto fd = without_timing(
      Simulation(toy_config("[algorithm]\nname = \"feddropout\"\n[feddropout]\nrate = 0.0\n"), data)
          .run());
  EXPECT_EQ(fedavg, fd);
}

TEST(FedDropout, LearnsToyTaskAndIsDeterministic) {
  auto data = toy_data(4);
  auto cfg = toy_config("[algorithm]\nname = \"feddropout\"\n[feddropout]\nrate = 0.5\n");
  auto rows = Simulation(cfg, data).run();
  EXPECT_GT(rows.back().at("accuracy"), 0.9);
  auto again = cfg;
  again.set("runtime.workers=1");
  EXPECT_EQ(without_timing(rows), without_timing(Simulation(again, data).run()));
}

TEST(EndToEnd, FedDropoutWithCompressionOnFashionMnistSubset) {
  if (!std::filesystem::exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"))
    GTEST_SKIP() << "Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)";
  auto cfg = Config::from_string(R"(
seed = 1
rounds = 3
[algorithm]
name = "feddropout"
[feddropout]
rate = 0.25
[data]
dataset = "fashion-mnist"
subset_train = 6000
subset_test = 2000
num_clients = 5
partition = "iid"
[model]
name = "mlp"
[train]
lr = 0.05
momentum = 0.9
batch_size = 32
[codec.down]
transform = "hadamard"
bits = 8
[codec.up]
transform = "hadamard"
bits = 4
subsample = 0.5
[runtime]
workers = 2
[output]
quiet = true
)");
  auto rows = Simulation(cfg).run();
  EXPECT_GT(rows.back().at("accuracy"), 0.7);  // chance is 0.1
}
