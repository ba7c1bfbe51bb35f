// Models out and in: PyTorch-readable state dicts (models/state_dict.hpp), the global model a run
// writes, model.init, and the errors for files that do not fit. (tests/test_export.py checks the
// files against Python's torch.)
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <torch/serialize.h>

#include "fedpp/algorithms/fedavg.hpp"
#include "fedpp/core/config.hpp"
#include "fedpp/core/error.hpp"
#include "fedpp/fl/training.hpp"
#include "fedpp/models/state_dict.hpp"
#include "fedpp/runtime/simulation.hpp"

using namespace fedpp;
namespace fs = std::filesystem;

namespace {

std::string temp_dir(const std::string& name) {
  auto d = testing::TempDir() + "/" + name;
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

Config run_config(const std::string& dir, const std::string& extra = "") {
  return Config::from_string(R"(
seed = 2
rounds = 3
[data]
dataset = "synthetic"
synthetic_samples = 400
synthetic_test_samples = 100
synthetic_classes = 4
synthetic_shape = [1, 8, 8]
num_clients = 2
[model]
name = "mlp"
[train]
lr = 0.05
batch_size = 16
[runtime]
workers = 1
[output]
quiet = true
dir = ")" + dir + "\"\n" + extra);
}

}  // namespace

TEST(StateDict, RoundTripKeepsNamesValuesAndDtypes) {
  auto dir = temp_dir("state_dict_roundtrip");
  NamedTensors t;
  t.set("conv1.weight", torch::randn({4, 1, 5, 5}));
  t.set("bn.num_batches_tracked", torch::tensor(7, torch::kLong));
  t.set("fc.bias", torch::arange(3, torch::kDouble));
  save_state_dict(t, dir + "/m.pt");
  EXPECT_FALSE(fs::exists(dir + "/m.pt.tmp"));
  auto back = load_state_dict(dir + "/m.pt");
  ASSERT_EQ(back.names(), t.names());
  for (const auto& [n, v] : t) {
    EXPECT_EQ(back.at(n).scalar_type(), v.scalar_type()) << n;
    EXPECT_TRUE(torch::equal(back.at(n), v)) << n;
  }
}

TEST(StateDict, BadFilesGetOneClearError) {
  auto dir = temp_dir("state_dict_bad");
  EXPECT_NE(error_of([&] { load_state_dict(dir + "/missing.pt"); }).find("not found"),
            std::string::npos);
  write_bytes(dir + "/empty.pt", "");
  EXPECT_NE(error_of([&] { load_state_dict(dir + "/empty.pt"); }).find("empty"), std::string::npos);
  write_bytes(dir + "/foreign.pt", "PK\x03\x04 certainly not a pickle, just some bytes");
  EXPECT_NE(error_of([&] { load_state_dict(dir + "/foreign.pt"); }).find("not a PyTorch state dict"),
            std::string::npos);
  NamedTensors t;
  t.set("w", torch::randn({64, 64}));
  save_state_dict(t, dir + "/good.pt");
  std::ifstream in(dir + "/good.pt", std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  write_bytes(dir + "/truncated.pt", bytes.substr(0, bytes.size() / 2));
  EXPECT_NE(error_of([&] { load_state_dict(dir + "/truncated.pt"); }).find("truncated"),
            std::string::npos);
  auto lone = torch::pickle_save(torch::randn({3}));  // a tensor, not a dict
  write_bytes(dir + "/tensor.pt", std::string(lone.begin(), lone.end()));
  EXPECT_NE(error_of([&] { load_state_dict(dir + "/tensor.pt"); }).find("not a state dict"),
            std::string::npos);
}

TEST(StateDict, FitCheckNamesTheFirstTensorThatDiffers) {
  auto m = make_model("mlp", ModelSpec{{1, 8, 8}, 4});
  auto file = module_state(*m).clone();
  EXPECT_EQ(error_of([&] { check_state_dict_fits(file, *m, "mlp", "f.pt"); }), "");
  auto wrong = file.clone();
  wrong.set("fc2.weight", torch::zeros({3, 3}));
  auto e = error_of([&] { check_state_dict_fits(wrong, *m, "mlp", "f.pt"); });
  EXPECT_NE(e.find("'fc2.weight'"), std::string::npos) << e;
  auto missing = file.clone();
  missing.erase("fc3.bias");
  e = error_of([&] { check_state_dict_fits(missing, *m, "mlp", "f.pt"); });
  EXPECT_NE(e.find("no tensor 'fc3.bias'"), std::string::npos) << e;
  auto extra = file.clone();
  extra.set("fc9.weight", torch::zeros({1}));
  e = error_of([&] { check_state_dict_fits(extra, *m, "mlp", "f.pt"); });
  EXPECT_NE(e.find("'fc9.weight'"), std::string::npos) << e;
}

// A run writes its final global model (and every k rounds on request); scored again, the file
// gives the run's last accuracy; model.init starts a run from it.
TEST(StateDict, RunWritesGlobalModelAndModelInitStartsFromIt) {
  auto dir = temp_dir("export_run");
  Simulation sim(run_config(dir + "/a", "save_model_every = 2\n"));
  auto rows = sim.run();
  ASSERT_TRUE(fs::exists(dir + "/a/global_model.pt"));
  EXPECT_TRUE(fs::exists(dir + "/a/global_model_round2.pt"));
  EXPECT_FALSE(fs::exists(dir + "/a/global_model_round3.pt"));
  auto file = load_state_dict(dir + "/a/global_model.pt");
  auto m = make_model("mlp", spec_of(sim.data()));
  check_state_dict_fits(file, *m, "mlp", "global_model.pt");
  load_module_state(*m, file);
  m->eval();
  auto s = evaluate_logits(sim.data().global_test, [&](const torch::Tensor& x) { return m->forward(x); });
  EXPECT_EQ(s.accuracy, rows.back().at("accuracy"));
  EXPECT_EQ(s.loss, rows.back().at("loss"));

  AlgorithmSetup setup;
  setup.cfg = Config::from_string("[model]\nname = \"mlp\"\ninit = \"" + dir + "/a/global_model.pt\"\n");
  setup.spec = spec_of(sim.data());
  setup.seed = 9;
  FedAvgServer server(setup);
  for (const auto& [n, t] : file) EXPECT_TRUE(torch::equal(server.save_state().tensors.at(n), t)) << n;
  // A file of another architecture is refused, naming the first tensor that differs.
  setup.cfg = Config::from_string("[model]\nname = \"fedavg_cnn\"\ninit = \"" + dir +
                                  "/a/global_model.pt\"\n");
  setup.spec = ModelSpec{{1, 28, 28}, 4};
  auto e = error_of([&] { FedAvgServer bad(setup); });
  EXPECT_NE(e.find("no tensor 'conv1.weight'"), std::string::npos) << e;
}
