#include <gtest/gtest.h>
#include <gnu/libc-version.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <tuple>

#include "fedpp/core/config.hpp"
#include "fedpp/core/error.hpp"
#include "fedpp/algorithms/common/global_model.hpp"
#include "fedpp/fl/algorithm.hpp"
#include "fedpp/models/state_dict.hpp"
#include "fedpp/report/run_writer.hpp"
#include "fedpp/runtime/simulation.hpp"
#include "fedpp/runtime/threads.hpp"
#include "toy.hpp"

using namespace fedpp;
using fedpp::toy::toy_config;
using fedpp::toy::toy_data;

namespace {


std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

TEST(Simulation, FedAvgLearnsToyTask) {
  Simulation sim(toy_config(), toy_data(4));
  auto rows = sim.run();
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_GT(rows.back().at("accuracy"), 0.9);
  EXPECT_EQ(rows.back().at("clients"), 4);
  // mlp on 1x8x8, 4 classes: (64*200+200) + (200*200+200) + (200*4+4) floats each way.
  const double params = 64 * 200 + 200 + 200 * 200 + 200 + 200 * 4 + 4;
  EXPECT_GT(rows.back().at("bytes_down"), 4 * params * 4);
  EXPECT_LT(rows.back().at("bytes_down"), 4 * (params * 4 + 400));
  EXPECT_GT(rows.back().at("client_macs"), 0);
}

// The personalised summary is the algorithm's (ServerAlgorithm::aggregate_evaluate): by default
// mean, min and max of the clients' accuracy and the mean of their other metrics; a method may
// add its own, here a median.
TEST(Simulation, PersonalisedSummaryIsTheAlgorithms) {
  ClientEvals evals{{0, {{"accuracy", 0.5}, {"loss", 1.0}, {"num_samples", 10}}},
                    {3, {{"accuracy", 0.9}, {"loss", 3.0}, {"num_samples", 30}}},
                    {4, {{"accuracy", 0.7}, {"loss", 2.0}, {"num_samples", 20}}}};
  const auto s = summarise_personal(evals);
  EXPECT_DOUBLE_EQ(s.at("personal_accuracy_mean"), 0.7);
  EXPECT_DOUBLE_EQ(s.at("personal_accuracy_min"), 0.5);
  EXPECT_DOUBLE_EQ(s.at("personal_accuracy_max"), 0.9);
  EXPECT_DOUBLE_EQ(s.at("personal_loss_mean"), 2.0);
  EXPECT_FALSE(s.count("personal_num_samples_mean"));

  struct MedianServer : FedAvgServer {
    using FedAvgServer::FedAvgServer;
    std::map<std::string, double> aggregate_evaluate(int64_t round,
                                                     const ClientEvals& e) const override {
      auto out = FedAvgServer::aggregate_evaluate(round, e);
      std::vector<double> acc;
      for (const auto& [c, r] : e) acc.push_back(r.at("accuracy"));
      std::sort(acc.begin(), acc.end());
      out["personal_accuracy_median"] = acc[acc.size() / 2];
      return out;
    }
  };
  AlgorithmInfo info = find_algorithm("fedavg");
  info.name = "fedavg_with_median";
  info.personalized = true;
  info.make_server = [](const AlgorithmSetup& s) { return std::make_unique<MedianServer>(s); };
  register_algorithm(info);
  auto rows = Simulation(toy_config("[algorithm]\nname = \"fedavg_with_median\"\n"), toy_data(3))
                  .run();
  ASSERT_EQ(rows.size(), 3u);
  for (const auto& r : rows) {
    ASSERT_TRUE(r.count("personal_accuracy_median"));
    EXPECT_GE(r.at("personal_accuracy_median"), r.at("personal_accuracy_min"));
    EXPECT_LE(r.at("personal_accuracy_median"), r.at("personal_accuracy_max"));
  }
}

TEST(Simulation, SameSeedSameResultsAcrossWorkerCounts) {
  auto strip = [](std::vector<Row> rows) {
    for (auto& r : rows)
      for (auto it = r.begin(); it != r.end();)
        it = it->first.size() > 2 && it->first.substr(it->first.size() - 2) == "_s"
                 ? r.erase(it)
                 : std::next(it);
    return rows;
  };
  auto data = toy_data(4);
  auto a = strip(Simulation(toy_config(), data).run());
  auto b = strip(Simulation(toy_config(), data).run());
  auto c = strip(Simulation(toy_config("[sampling]\nfraction = 1.0\n"), data).run());
  EXPECT_EQ(a, b);
  EXPECT_EQ(a, c);
  auto cfg1 = toy_config();
  cfg1.set("runtime.workers=1");
  EXPECT_EQ(a, strip(Simulation(cfg1, data).run()));
  auto cfg2 = toy_config();
  cfg2.set("seed=4");
  EXPECT_NE(a, strip(Simulation(cfg2, data).run()));
}

TEST(Simulation, FedProxStaysCloserToGlobal) {
  auto data = toy_data(2);
  auto prox = toy_config("[algorithm]\nname = \"fedprox\"\n[fedprox]\nmu = 1.0\n");
  auto rows_avg = Simulation(toy_config(), data).run();
  auto rows_prox = Simulation(prox, data).run();
  EXPECT_GT(rows_prox.back().at("accuracy"), 0.8);
  EXPECT_NE(rows_avg.back().at("accuracy") + rows_avg.back().at("loss"),
            rows_prox.back().at("accuracy") + rows_prox.back().at("loss"));
}

TEST(Simulation, UnknownKeyRejectedBeforeTraining) {
  auto cfg = toy_config();
  cfg.set("train.learning_rate=0.1");
  try {
    Simulation sim(cfg, toy_data(2));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("train.learning_rate"), std::string::npos) << e.what();
  }
}

// FedAvg beside personalised methods: its global model scored on every client's own split.
TEST(Simulation, FedAvgPersonalisedEvaluationOnRequest) {
  auto rows = Simulation(toy_config("[eval]\npersonalized = \"true\"\n"), toy_data(3)).run();
  ASSERT_TRUE(rows.back().count("personal_accuracy_mean"));
  EXPECT_GT(rows.back().at("personal_accuracy_mean"), 0.9);
  EXPECT_TRUE(rows.back().count("accuracy"));  // and still on the global test set
  auto plain = Simulation(toy_config(), toy_data(3)).run();
  EXPECT_FALSE(plain.back().count("personal_accuracy_mean"));
}

// One file drives both runtimes: the simulation accepts (and ignores) the [deploy] section.
TEST(Simulation, AcceptsADeploySection) {
  auto rows = Simulation(toy_config("[deploy]\npoll_s = 1\ntoken_secret = \"s\"\n"), toy_data(2)).run();
  EXPECT_EQ(rows.size(), 3u);
}

// A deployed client whose training diverges tells the server, which counts the reply among the
// round's rejected ones with the reason, instead of the client process dying.
TEST(Simulation, ADivergingClientReportsAFailedFit) {
  auto cfg = toy_config();
  cfg.set("train.lr=1000.0");
  auto data = toy_data(2);
  auto opt = RunOptions::from_config(cfg);
  const auto& info = find_algorithm("fedavg");
  auto setup = setup_for(cfg, opt, *data);
  ServerLoop loop(cfg, opt, info, setup, data->global_test);
  ClientRunner runner(opt, info.make_client(setup));
  auto tasks = loop.begin_round(1);
  ASSERT_EQ(tasks.size(), 2u);
  ClientState state;
  state.scalars["kept"] = 1.0;
  bool failed = false;
  auto reply = runner.fit_or_report(1, tasks[0].client, tasks[0].bytes,
                                    data->clients[static_cast<size_t>(tasks[0].client)], &state,
                                    &failed);
  EXPECT_TRUE(failed);
  EXPECT_EQ(state.scalars.at("kept"), 1.0);  // left as it was
  auto reason = loop.accept_reply(tasks[0].client, reply);
  EXPECT_NE(reason.find("fit failed"), std::string::npos) << reason;
  EXPECT_NE(reason.find("non-finite"), std::string::npos) << reason;
  auto row = loop.end_round();
  EXPECT_EQ(row.at("rejected"), 1);
  EXPECT_EQ(row.at("replies"), 0);
}

// A full disk is one clear error, never rc 0 with an empty file: writes go through
// write_file_atomic / append_file, here pointed at /dev/full.
TEST(RunWriter, AFullDiskIsAClearError) {
  if (!std::filesystem::exists("/dev/full")) GTEST_SKIP() << "no /dev/full";
  auto dir = testing::TempDir() + "/fedpp_full_disk";
  std::filesystem::remove_all(dir);
  RunWriter w(dir);
  w.append_round({{"round", 1}, {"accuracy", 0.5}});
  const auto before = slurp(dir + "/metrics.csv");
  std::filesystem::create_symlink("/dev/full", dir + "/metrics.csv.tmp");
  try {
    w.append_round({{"round", 2}, {"accuracy", 0.6}});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("No space left on device"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("output.dir"), std::string::npos) << e.what();
  }
  EXPECT_EQ(slurp(dir + "/metrics.csv"), before);  // the old file is intact
  EXPECT_FALSE(std::filesystem::exists(dir + "/metrics.csv.tmp"));
  std::filesystem::remove(dir + "/metrics.jsonl");
  std::filesystem::create_symlink("/dev/full", dir + "/metrics.jsonl");
  EXPECT_THROW(w.append_round({{"round", 3}, {"accuracy", 0.7}}), Error);
}

TEST(Simulation, PartialParticipation) {
  auto cfg = toy_config("[sampling]\nfraction = 0.5\n");
  auto rows = Simulation(cfg, toy_data(4)).run();
  for (const auto& r : rows) EXPECT_EQ(r.at("clients"), 2);
}

TEST(Simulation, WritesResultsFolder) {
  auto dir = testing::TempDir() + "/fedpp_run_test";
  std::filesystem::remove_all(dir);
  auto cfg = toy_config();
  cfg.set("output.dir=\"" + dir + "\"");
  Simulation(cfg, toy_data(2)).run();
  for (auto f : {"config.toml", "config.json", "partition.json", "metrics.csv", "metrics.jsonl"})
    EXPECT_TRUE(std::filesystem::exists(dir + "/" + f)) << f;
  auto csv = slurp(dir + "/metrics.csv");
  EXPECT_EQ(csv.rfind("round,", 0), 0u) << csv;
  EXPECT_NE(csv.find("bytes_up"), std::string::npos);
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 4);
  EXPECT_EQ(read_rows(dir).size(), 3u);
  auto resolved = slurp(dir + "/config.toml");
  EXPECT_NE(resolved.find("local_epochs = 1"), std::string::npos) << resolved;
}

// output.save_client_models writes exactly each trained client's private model (its state),
// nothing for a client that never trained, and no file of an earlier run survives.
TEST(Simulation, SavesEachTrainedClientsOwnModel) {
  auto dir = testing::TempDir() + "/fedpp_client_models";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir + "/client_models");
  std::ofstream(dir + "/client_models/client_9.pt") << "an earlier run's";
  auto cfg = Config::from_string(
      "seed = 3\nrounds = 2\n[algorithm]\nname = \"standalone\"\n[hetero]\nmodels = [\"mlp\"]\n"
      "[sampling]\nfraction = 0.5\n[train]\nlr = 0.05\nbatch_size = 16\n[runtime]\nworkers = 1\n"
      "[output]\nquiet = true\nsave_client_models = true\ndir = \"" + dir + "\"\n");
  Simulation sim(cfg, toy_data(4));
  sim.run();
  int trained = 0;
  for (int64_t c = 0; c < 4; ++c) {
    const auto path = dir + "/client_models/client_" + std::to_string(c) + ".pt";
    ClientState state = sim.states().load(c);
    if (state.empty()) {
      EXPECT_FALSE(std::filesystem::exists(path)) << path;
      continue;
    }
    ++trained;
    auto file = load_state_dict(path);
    auto own = state.tensors.with_prefix("model.", true);
    ASSERT_EQ(file.names(), own.names()) << path;
    for (const auto& [name, t] : own) EXPECT_TRUE(torch::equal(file.at(name), t)) << name;
  }
  EXPECT_GT(trained, 0);
  EXPECT_FALSE(std::filesystem::exists(dir + "/client_models/client_9.pt"));
  auto index = slurp(dir + "/client_models/index.json");
  EXPECT_EQ(static_cast<int>(std::count(index.begin(), index.end(), '{')), trained) << index;
}

// output.progress_s: a round's training reports clients trained of sampled while it runs;
// output.quiet silences it.
TEST(Simulation, LongRoundsPrintProgressUnlessQuiet) {
  for (bool quiet : {false, true}) {
    SCOPED_TRACE(quiet ? "quiet" : "not quiet");
    auto cfg = toy_config();
    cfg.set("output.progress_s=0.000001");
    cfg.set("output.quiet=" + std::string(quiet ? "true" : "false"));
    cfg.set("rounds=1");
    cfg.set("runtime.workers=1");
    testing::internal::CaptureStdout();
    testing::internal::CaptureStderr();
    Simulation(cfg, toy_data(4)).run();
    const std::string out = testing::internal::GetCapturedStdout() +
                            testing::internal::GetCapturedStderr();
    for (int done = 1; done <= 3; ++done) {
      const bool seen =
          out.find("round 1: " + std::to_string(done) + "/4 clients trained") != std::string::npos;
      EXPECT_EQ(seen, !quiet) << out;
    }
    EXPECT_EQ(out.find("4/4 clients trained"), std::string::npos) << out;  // not at the end
  }
}

// LG-FedAvg and FedGH: a client's personalised model is its private model with the server's
// shared head, as evaluation builds it; the exported file holds exactly that.
TEST(Simulation, SharedHeadMethodsExportThePrivateModelWithTheGlobalHead) {
  for (std::string algo : {"lgfedavg", "fedgh"}) {
    SCOPED_TRACE(algo);
    auto dir = testing::TempDir() + "/fedpp_head_models_" + algo;
    std::filesystem::remove_all(dir);
    auto cfg = Config::from_string(
        "seed = 3\nrounds = 2\n[algorithm]\nname = \"" + algo + "\"\n[hetero]\nmodels = [\"mlp\"]\n"
        "[train]\nlr = 0.05\nbatch_size = 16\n[runtime]\nworkers = 1\n"
        "[output]\nquiet = true\nsave_client_models = true\ndir = \"" + dir + "\"\n");
    Simulation sim(cfg, toy_data(3));
    sim.run();
    const NamedTensors head = sim.server().save_state().tensors;
    ASSERT_FALSE(head.empty());
    for (int64_t c = 0; c < 3; ++c) {
      auto file = load_state_dict(dir + "/client_models/client_" + std::to_string(c) + ".pt");
      auto own = sim.states().load(c).tensors.with_prefix("model.", true);
      ASSERT_EQ(file.names(), own.names());
      int from_head = 0;
      for (const auto& [name, t] : own) {
        const bool shared = head.contains(name);
        from_head += shared;
        EXPECT_TRUE(torch::equal(file.at(name), shared ? head.at(name) : t)) << name;
      }
      EXPECT_EQ(from_head, static_cast<int>(head.size()));
    }
  }
}

// Caldas et al. / TFF: the server adds the clients' averaged update to its own exact model, so
// a lossy down-link cannot change the global model by itself. With lr = 0 every update is zero:
// the global model must stay bit-identical round after round, whatever the up-link, for FedAvg
// and for Federated Dropout's sub-models.
TEST(Simulation, LossyDownLinkNeverEntersTheGlobalModel) {
  auto data = toy_data(4);
  for (std::string algo : {"fedavg", "feddropout"}) {
    for (std::string up : {"", "[codec.up]\ntransform = \"hadamard\"\nbits = 4\n"}) {
      SCOPED_TRACE(algo + (up.empty() ? " lossless up-link" : " hadamard q4 up-link"));
      auto cfg = toy_config("[algorithm]\nname = \"" + algo +
                            "\"\n[codec.down]\ntransform = \"hadamard\"\nbits = 4\n" + up);
      cfg.set("train.lr=0.0");
      Simulation sim(cfg, data);
      const NamedTensors before = sim.server().save_state().tensors.clone();
      auto rows = sim.run();
      const NamedTensors after = sim.server().save_state().tensors;
      ASSERT_EQ(after.names(), before.names());
      for (const auto& [name, t] : before)
        EXPECT_TRUE(torch::equal(after.at(name), t)) << "tensor '" << name << "' changed";
      for (const auto& r : rows) EXPECT_EQ(r.at("loss"), rows[0].at("loss"));
      // The down-link was lossy indeed: far fewer bytes than float32 values.
      const double params = 64 * 200 + 200 + 200 * 200 + 200 + 200 * 4 + 4;
      EXPECT_LT(rows[0].at("bytes_down_per_client"), params * 4 / 3);
    }
  }
}

// output.checkpoint_every + resume(): a run stopped after round 3 (its checkpoint is of round 2)
// and resumed gives the rows, per-client lines and fleet lines of a run that never stopped: for
// FedMoE, whose clients keep private models (sampled half of them per round), and for FedAvg on
// a simulated fleet (the clock is restored) with the clients' state on disk, and for FedGKT with
// every client in every round.
TEST(Simulation, ResumeGivesTheRunThatNeverStopped) {
  auto strip = [](std::vector<Row> rows) {
    for (auto& r : rows)
      for (auto it = r.begin(); it != r.end();)
        it = it->first.size() > 2 && it->first.substr(it->first.size() - 2) == "_s" &&
                     it->first.rfind("sim_", 0) != 0
                 ? r.erase(it)
                 : std::next(it);
    return rows;
  };
  const std::string base = R"(
seed = 4
rounds = 4
[data]
dataset = "synthetic"
synthetic_samples = 600
synthetic_test_samples = 100
synthetic_classes = 4
num_clients = 4
partition = "pathological"
classes_per_client = 2
pool = "all"
client_test_fraction = 0.2
[sampling]
fraction = 0.5
[train]
lr = 0.05
batch_size = 32
[runtime]
workers = 2
[output]
quiet = true
checkpoint_every = 2
)";
  const std::string fedmoe = base + "[algorithm]\nname = \"fedmoe\"\n";
  const std::string fedavg = base + "[algorithm]\nname = \"fedavg\"\n[model]\nname = \"cnn5\"\n"
                                    "[fleet]\nprofile = \"phones_4g\"\n";
  // FedGKT's server feature cache is not in the checkpoint: with every client in every round the
  // server trains on this round's features only, so the resumed run is the same.
  std::string fedgkt = base + "[algorithm]\nname = \"fedgkt\"\n[fedgkt]\nserver_epochs = 1\n";
  fedgkt.replace(fedgkt.find("[train]"), std::string("[train]\nlr = 0.05\nbatch_size = 32\n").size(),
                 "");  // FedGKT reads fedgkt.*, not train.*
  using Sets = std::vector<std::string>;
  for (const auto& [name, text, extra] : std::vector<std::tuple<std::string, std::string, Sets>>{
           {"fedmoe", fedmoe, {}},
           {"fedavg_fleet", fedavg, {"runtime.state=\"disk\""}},
           {"fedgkt_all_clients", fedgkt,  // small images: the server trains a ResNet-56 body
            {"sampling.fraction=1.0", "data.synthetic_shape=[1, 8, 8]",
             "data.synthetic_samples=300"}}}) {
    SCOPED_TRACE(name);
    auto config = [&](const std::string& dir) {
      auto cfg = Config::from_string(text);
      cfg.set("rounds=4");
      for (const auto& e : extra) cfg.set(e);
      cfg.set("output.dir=\"" + dir + "\"");
      return cfg;
    };
    const auto whole = testing::TempDir() + "/fedpp_resume_whole_" + name;
    const auto cut = testing::TempDir() + "/fedpp_resume_cut_" + name;
    std::filesystem::remove_all(whole);
    std::filesystem::remove_all(cut);
    const auto expected = strip(Simulation(config(whole)).run());
    ASSERT_EQ(expected.size(), 4u);
    {
      Simulation stopped(config(cut));
      for (int64_t r = 1; r <= 3; ++r) stopped.run_round(r);  // "dies" after round 3
    }
    EXPECT_TRUE(std::filesystem::exists(cut + "/checkpoint/checkpoint.json"));
    Simulation resumed(config(cut));
    resumed.resume();
    EXPECT_EQ(strip(resumed.run()), expected);
    EXPECT_EQ(strip(read_rows(cut)), expected);
    for (auto f : {"/clients.jsonl", "/fleet.jsonl"})
      EXPECT_EQ(slurp(cut + f), slurp(whole + f)) << f;
    if (name != "fedgkt_all_clients")
      EXPECT_FALSE(slurp(whole + (name == "fedmoe" ? "/clients.jsonl" : "/fleet.jsonl")).empty());

    // A config that changes the run is refused, naming the key; so is a folder without one.
    auto other = config(cut);
    other.set("train.lr=0.01");
    try {
      Simulation(other).resume();
      ADD_FAILURE() << "resumed with another learning rate";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("train.lr"), std::string::npos) << e.what();
    }
    const auto empty = testing::TempDir() + "/fedpp_resume_none";
    std::filesystem::remove_all(empty);
    try {
      Simulation(config(empty)).resume();
      ADD_FAILURE() << "resumed without a checkpoint";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("no checkpoint"), std::string::npos) << e.what();
    }
  }
}

TEST(EndToEnd, FedAvgOnFashionMnistSubset) {
  if (!std::filesystem::exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"))
    GTEST_SKIP() << "Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)";
  auto cfg = Config::from_string(R"(
seed = 1
rounds = 3
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
[runtime]
workers = 2
threads = 1
[output]
quiet = true
)");
  auto rows = Simulation(cfg).run();
  // Chance is 10%; a 3-round MLP on 6,000 images reaches about 80%.
  EXPECT_GT(rows.back().at("accuracy"), 0.70);
  EXPECT_LT(rows.back().at("loss"), rows.front().at("loss") + 1e-9);
}

TEST(Report, PlotsCompareRuns) {
  auto base = testing::TempDir() + "/fedpp_report_test";
  std::filesystem::remove_all(base);
  for (const char* seed : {"1", "2"}) {
    auto cfg = toy_config();
    cfg.set(std::string("seed=") + seed);
    cfg.set("output.dir=\"" + base + "/run" + seed + "\"");
    Simulation(cfg, toy_data(2)).run();
  }
  auto pngs = plot_runs({base + "/run1", base + "/run2"}, base + "/plots", "auto");
  ASSERT_EQ(pngs.size(), 2u);
  for (const auto& p : pngs) {
    auto bytes = slurp(p);
    ASSERT_GT(bytes.size(), 1000u) << p;
    EXPECT_EQ(bytes.substr(1, 3), "PNG") << p;
  }
  EXPECT_THROW(plot_runs({base + "/missing"}, base + "/plots", "auto"), Error);
  EXPECT_THROW(plot_runs({base + "/run1"}, base + "/plots", "no_such_column"), Error);

  // "auto" picks one column for every run: personalised accuracy only when all have it.
  auto cfg = toy_config();
  cfg.set("eval.personalized=\"true\"");
  cfg.set("output.dir=\"" + base + "/personal\"");
  Simulation(cfg, toy_data(2)).run();
  plot_runs({base + "/personal", base + "/run1"}, base + "/mixed", "auto");
  for (const char* f : {"/mixed/run0.dat", "/mixed/run1.dat"})
    EXPECT_NE(slurp(base + f).find("mean(accuracy)"), std::string::npos) << f;
  plot_runs({base + "/personal"}, base + "/alone", "auto");
  EXPECT_NE(slurp(base + "/alone/run0.dat").find("mean(personal_accuracy_mean)"),
            std::string::npos);
}

// ---- process settings (runtime/threads.hpp) -----------------------------------------------

// Run by the test below in a re-executed copy of this binary: writes what it was started with.
TEST(Threads, HugePagesChildReportsItsEnvironment) {
  const char* out = std::getenv("FEDPP_TEST_ENV_OUT");
  if (!out) GTEST_SKIP() << "only run by Threads.HugePagesReexecuteOnceWithTheTunable";
  char self[] = "fedpp_tests";
  char* argv[] = {self, nullptr};
  use_huge_pages(argv);  // as main() does: in the re-executed copy it only clears the marker
  const char* t = std::getenv("GLIBC_TUNABLES");
  const char* m = std::getenv("FEDPP_HUGEPAGES_REEXEC");
  std::ofstream(out) << (t ? t : "(unset)") << "\n" << (m ? m : "(unset)") << "\n";
}

// The decision, input by input.
TEST(Threads, HugePageTunablesDecideWhenToReexecute) {
  HugePageInputs in;
  in.libc_version = "2.36";
  in.thp_mode = "always [madvise] never";
  in.exe = "/work/build/fedpp";
  EXPECT_EQ(huge_page_tunables(in), "glibc.malloc.hugetlb=1");
  in.glibc_tunables = "glibc.malloc.trim_threshold=1";  // the user's tunables are kept
  EXPECT_EQ(huge_page_tunables(in), "glibc.malloc.trim_threshold=1:glibc.malloc.hugetlb=1");
  auto without = [&](auto change) {
    HugePageInputs x = in;
    change(x);
    return huge_page_tunables(x);
  };
  EXPECT_EQ(without([](auto& x) { x.fedpp_hugepages = "0"; }), "");
  EXPECT_EQ(without([](auto& x) { x.reexec_marker = "1"; }), "");
  EXPECT_EQ(without([](auto& x) { x.glibc_tunables = "glibc.malloc.hugetlb=0"; }), "");
  EXPECT_EQ(without([](auto& x) { x.libc_version = "2.34"; }), "");
  EXPECT_EQ(without([](auto& x) { x.libc_version = "garbage"; }), "");
  EXPECT_EQ(without([](auto& x) { x.thp_mode = "always madvise [never]"; }), "");
  EXPECT_EQ(without([](auto& x) { x.thp_mode = "[always] madvise never"; }), "");
  EXPECT_EQ(without([](auto& x) { x.thp_mode = ""; }), "");  // no such file
  EXPECT_EQ(without([](auto& x) {
              x.ld_preload = "/usr/libexec/valgrind/vgpreload_memcheck-amd64-linux.so";
            }),
            "");
  EXPECT_EQ(without([](auto& x) { x.exe = "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"; }),
            "");
  EXPECT_EQ(without([](auto& x) { x.fedpp_hugepages = "1"; }),
            "glibc.malloc.trim_threshold=1:glibc.malloc.hugetlb=1");
}

// The re-execution itself, once: a child process calls use_huge_pages and the re-executed copy
// of this binary reports its environment (the marker is gone, the tunable is set).
TEST(Threads, HugePagesReexecuteOnceWithTheTunable) {
  HugePageInputs here;
  here.libc_version = gnu_get_libc_version();
  std::ifstream thp("/sys/kernel/mm/transparent_hugepage/enabled");
  std::getline(thp, here.thp_mode);
  here.exe = "/fedpp_tests";
  if (huge_page_tunables(here).empty())
    GTEST_SKIP() << "huge pages do not apply here (glibc " << here.libc_version << ", THP '"
                 << here.thp_mode << "')";
  const auto file = std::filesystem::temp_directory_path() /
                    ("fedpp_hugepages_" + std::to_string(::getpid()));
  std::filesystem::remove(file);
  // Everything the child needs is prepared before fork().
  std::string self = "fedpp_tests",
              filter = "--gtest_filter=Threads.HugePagesChildReportsItsEnvironment";
  char* argv[] = {self.data(), filter.data(), nullptr};
  const pid_t pid = fork();
  if (pid == 0) {
    alarm(120);  // never hang the suite
    for (const char* k : {"GLIBC_TUNABLES", "FEDPP_HUGEPAGES", "FEDPP_HUGEPAGES_REEXEC",
                          "GTEST_SHARD_INDEX", "GTEST_TOTAL_SHARDS", "GTEST_OUTPUT",
                          "XML_OUTPUT_FILE", "LD_PRELOAD"})
      ::unsetenv(k);
    ::setenv("GLIBC_TUNABLES", "glibc.malloc.trim_threshold=1048576", 1);
    ::setenv("FEDPP_TEST_ENV_OUT", file.c_str(), 1);
    use_huge_pages(argv);
    _exit(42);  // came back: no re-execution
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status)) << "the child did not exit normally";
  ASSERT_NE(WEXITSTATUS(status), 42) << "use_huge_pages returned without re-executing";
  std::ifstream in(file);
  std::string tunables, marker;
  std::getline(in, tunables);
  std::getline(in, marker);
  EXPECT_EQ(tunables, "glibc.malloc.trim_threshold=1048576:glibc.malloc.hugetlb=1");
  EXPECT_EQ(marker, "(unset)");  // cleared, so that the program's own children start clean
  std::filesystem::remove(file);
}
