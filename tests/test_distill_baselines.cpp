// The distillation-family baselines: FedProto, FD, FML, FedKD (and their shared helpers).
#include <gtest/gtest.h>

#include "fedpp/algorithms/common/distill.hpp"
#include "fedpp/algorithms/fd.hpp"
#include "fedpp/algorithms/fedkd.hpp"
#include "fedpp/algorithms/fedproto.hpp"
#include "fedpp/algorithms/fml.hpp"
#include "fedpp/core/config.hpp"
#include "fedpp/core/error.hpp"
#include "fedpp/runtime/simulation.hpp"

using namespace fedpp;

namespace {

constexpr int64_t kClasses = 4;

// Four separable Gaussian clusters in 1x28x28; client c holds classes c % 4 and (c + 1) % 4
// (pathological non-IID), with a test split from the same two classes.
std::shared_ptr<FederatedData> cluster_data(int64_t clients, int64_t per_class = 32) {
  auto gen = at::detail::createCPUGenerator(7);
  auto centers = 2.0 * torch::randn({kClasses, 1, 28, 28}, gen);
  auto make = [&](int64_t a, int64_t b, int64_t n) {
    Dataset d;
    d.y = torch::cat({torch::full({n}, a, torch::kLong), torch::full({n}, b, torch::kLong)});
    d.x = centers.index_select(0, d.y) + 0.5 * torch::randn({2 * n, 1, 28, 28}, gen);
    d.num_classes = kClasses;
    d.name = "clusters";
    return d;
  };
  auto data = std::make_shared<FederatedData>();
  for (int64_t c = 0; c < clients; ++c) {
    int64_t a = c % kClasses, b = (c + 1) % kClasses;
    data->clients.push_back({make(a, b, per_class), make(a, b, per_class / 2)});
    std::vector<int64_t> per(kClasses, 0);
    per[a] = per[b] = per_class;
    data->summary.push_back({c, 2 * per_class, per_class, per});
  }
  data->global_test = make(0, 1, 16);
  return data;
}

// Overrides are "key=value" assignments (Config::set).
Config base_config(const std::string& algorithm, const std::vector<std::string>& sets = {}) {
  auto cfg = Config::from_string("seed = 5\nrounds = 3\n[algorithm]\nname = \"" + algorithm +
                                 "\"\n[hetero]\nmodels = [\"cnn4\", \"cnn5\"]\n"
                                 "[train]\nlocal_epochs = 4\nlr = 0.01\nmomentum = 0.9\n"
                                 "clip_grad_norm = 10\n"
                                 "batch_size = 16\n"
                                 "[runtime]\nworkers = 2\nthreads = 1\n[output]\nquiet = true\n");
  for (const auto& s : sets) cfg.set(s);
  return cfg;
}

AlgorithmSetup setup_of(const Config& cfg, int64_t clients) {
  AlgorithmSetup s;
  s.cfg = cfg;
  s.spec = {{1, 28, 28}, kClasses};
  s.num_clients = clients;
  s.seed = 5;
  return s;
}

// One fit of client `id` on `data` with the server's round-`round` message.
struct OneFit {
  Message sent, reply;
};
OneFit fit_once(const AlgorithmInfo& info, const AlgorithmSetup& setup, ServerAlgorithm& server,
                const FederatedData& data, int64_t id, ClientState& state, int64_t round = 1) {
  auto client = info.make_client(setup);
  ClientContext ctx;
  ctx.client_id = id;
  ctx.round = round;
  ctx.data = &data.clients.at(id);
  ctx.state = &state;
  ctx.seed = 99;
  OneFit f;
  f.sent = server.configure_fit(round, id);
  f.reply = client->fit(f.sent, ctx);
  return f;
}

std::vector<std::string> names_of(const NamedTensors& t) { return t.names(); }

}  // namespace

TEST(Distill, KdLossMatchesHandComputedValue) {
  // T = 2. Row 1: teacher [3,2,1], student [1,2,3]; row 2: teacher [1,0,0], student [0,0,0].
  // T^2 * KL(softmax(t/T) || softmax(s/T)) = 1.2806267 and 0.1206676; their mean 0.7006471.
  auto s = torch::tensor({1.f, 2.f, 3.f, 0.f, 0.f, 0.f}).reshape({2, 3}).requires_grad_();
  auto t = torch::tensor({3.f, 2.f, 1.f, 1.f, 0.f, 0.f}).reshape({2, 3}).requires_grad_();
  auto l = kd_loss(s, t, 2.0);
  EXPECT_NEAR(l.item<double>(), 0.7006471, 1e-6);
  EXPECT_NEAR(kd_loss(s.slice(0, 0, 1), t.slice(0, 0, 1), 2.0).item<double>(), 1.2806267, 1e-6);
  EXPECT_NEAR(kd_loss(s, s, 3.0).item<double>(), 0.0, 1e-6);
  l.backward();
  EXPECT_TRUE(s.grad().defined());
  EXPECT_FALSE(t.grad().defined());  // the teacher is a constant
}

TEST(Distill, ClassMeansAndWeightedServerAverage) {
  auto v = torch::tensor({1.f, 2.f, 3.f, 4.f, 5.f, 6.f}).reshape({3, 2});
  auto y = torch::tensor({0, 0, 2}, torch::kLong);
  auto m = class_means(v, y, 3);
  EXPECT_TRUE(torch::equal(m.means, torch::tensor({2.f, 3.f, 0.f, 0.f, 5.f, 6.f}).reshape({3, 2})));
  EXPECT_TRUE(torch::equal(m.counts, torch::tensor({2.f, 0.f, 1.f})));

  // The same over a data set in batches of 2 (fn: flatten the 1x1x2 samples).
  Dataset d;
  d.x = v.reshape({3, 1, 1, 2});
  d.y = y;
  auto m2 = class_means_over(d, [](const torch::Tensor& x) { return x.flatten(1); }, 3, 2);
  EXPECT_TRUE(torch::allclose(m2.means, m.means));
  EXPECT_TRUE(torch::equal(m2.counts, m.counts));

  // Server: a second client with class 0 mean [4,5] (2 samples) and class 1 mean [1,1] (3).
  Reply a{0, {}}, b{1, {}};
  m.put(a.message.tensors, "protos");
  ClassMeans mb{torch::tensor({4.f, 5.f, 1.f, 1.f, 0.f, 0.f}).reshape({3, 2}),
                torch::tensor({2.f, 3.f, 0.f})};
  mb.put(b.message.tensors, "protos");
  auto g = average_class_means({a, b}, "protos", 3);
  EXPECT_TRUE(torch::allclose(g.means, torch::tensor({3.f, 4.f, 1.f, 1.f, 5.f, 6.f}).reshape({3, 2})));
  EXPECT_TRUE(torch::equal(g.counts, torch::tensor({4.f, 3.f, 1.f})));

  // Pull towards the global vector of each label; class 1 has none in `m`, so row 2 adds zero.
  auto vals = torch::tensor({2.f, 3.f, 0.f, 0.f, 9.f, 9.f}).reshape({3, 2});
  auto mse = class_target_mse(vals, torch::tensor({2, 0, 1}, torch::kLong), m);
  // Row 0 vs [5,6]: 9 + 9; row 1 vs [2,3]: 4 + 9; row 2 skipped. Over 3 x 2 elements.
  EXPECT_NEAR(mse.item<double>(), (18.0 + 13.0) / 6.0, 1e-6);

  // A client whose tensors disagree in shape is named.
  Reply c{7, {}};
  ClassMeans{torch::zeros({3, 5}), torch::ones({3})}.put(c.message.tensors, "protos");
  try {
    average_class_means({a, c}, "protos", 3);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("client 7"), std::string::npos) << e.what();
  }
}

TEST(Distill, SvdCompressionKeepsEnergyAndRecovers) {
  auto gen = at::detail::createCPUGenerator(3);
  // A rank-2 40x30 matrix plus a bias: rank 2 carries all the energy.
  auto w = torch::randn({40, 2}, gen).matmul(torch::randn({2, 30}, gen));
  NamedTensors upd;
  upd.set("fc.weight", w);
  upd.set("fc.bias", torch::randn({40}, gen));
  upd.set("conv.weight", torch::randn({8, 1, 5, 5}, gen));  // [8, 25], full rank
  auto c = svd_compress(upd, 0.999);
  EXPECT_TRUE(c.contains("fc.weight.svd_us"));
  EXPECT_EQ(c.at("fc.weight.svd_us").sizes(), (std::vector<int64_t>{40, 2}));
  EXPECT_EQ(c.at("fc.weight.svd_v").sizes(), (std::vector<int64_t>{2, 30}));
  EXPECT_TRUE(c.contains("fc.bias"));
  EXPECT_TRUE(c.contains("conv.weight"));  // rank-8 factors (8x8 + 8x25) would not be smaller
  auto r = svd_recover(c, upd);
  EXPECT_EQ(r.names(), upd.names());
  EXPECT_TRUE(torch::allclose(r.at("fc.weight"), w, 1e-4, 1e-4));
  EXPECT_TRUE(torch::equal(r.at("fc.bias"), upd.at("fc.bias")));
  // Lower energy keeps fewer singular values of a full-rank matrix.
  NamedTensors full;
  full.set("m", torch::randn({64, 64}, gen));
  auto lo = svd_compress(full, 0.5);
  ASSERT_TRUE(lo.contains("m.svd_us"));
  EXPECT_LT(lo.at("m.svd_us").size(1), 32);
  EXPECT_THROW(svd_recover(NamedTensors{}, full), Error);
}

TEST(Distill, UploadsOnlyWhatEachMethodShares) {
  auto data = cluster_data(2);
  // FedProto: nothing down in round 1; up only per-class prototypes [C, 500] and counts.
  {
    auto cfg = base_config("fedproto");
    auto setup = setup_of(cfg, 2);
    const auto& info = find_algorithm("fedproto");
    EXPECT_TRUE(info.personalized);
    auto server = info.make_server(setup);
    ClientState st;
    auto f = fit_once(info, setup, *server, *data, 1, st);
    EXPECT_TRUE(f.sent.tensors.empty());
    EXPECT_EQ(names_of(f.reply.tensors), (std::vector<std::string>{"protos", "protos_counts"}));
    EXPECT_EQ(f.reply.tensors.at("protos").sizes(), (std::vector<int64_t>{kClasses, 500}));
    // Client 1 holds classes 1 and 2, 32 samples each.
    EXPECT_TRUE(torch::equal(f.reply.tensors.at("protos_counts"), torch::tensor({0.f, 32.f, 32.f, 0.f})));
    EXPECT_EQ(f.reply.metric("num_samples"), 64);
    EXPECT_GT(f.reply.metric("client_macs"), 0);
    server->aggregate(1, {{1, f.reply}});
    auto down = server->configure_fit(2, 0);
    EXPECT_EQ(names_of(down.tensors), (std::vector<std::string>{"protos", "protos_counts"}));
    EXPECT_TRUE(torch::allclose(down.tensors.at("protos"), f.reply.tensors.at("protos")));
    EXPECT_TRUE(server->configure_evaluate(2, 0).has_value());
  }
  // FD: per-class mean logits [C, C].
  {
    auto setup = setup_of(base_config("fd"), 2);
    const auto& info = find_algorithm("fd");
    auto server = info.make_server(setup);
    ClientState st;
    auto f = fit_once(info, setup, *server, *data, 0, st);
    EXPECT_EQ(names_of(f.reply.tensors), (std::vector<std::string>{"logits", "logits_counts"}));
    EXPECT_EQ(f.reply.tensors.at("logits").sizes(), (std::vector<int64_t>{kClasses, kClasses}));
    // Client 0's logits of class 0 favour class 0 after training.
    EXPECT_EQ(f.reply.tensors.at("logits")[0].argmax().item<int64_t>(), 0);
  }
  // FML and FedKD without SVD: exactly the shared model's tensors (cnn5 by default).
  auto cnn5 = module_state(*make_model_seeded("cnn5", {{1, 28, 28}, kClasses}, 0));
  for (std::string algo : {"fml", "fedkd"}) {
    auto setup = setup_of(base_config(algo, {algo == "fedkd" ? "fedkd.svd=false" : "fml.beta=0.5"}), 2);
    const auto& info = find_algorithm(algo);
    auto server = info.make_server(setup);
    ClientState st;
    auto f = fit_once(info, setup, *server, *data, 0, st);
    EXPECT_EQ(names_of(f.sent.tensors), cnn5.names()) << algo;
    // FedKD uploads the student's update under "update.<name>" (FML: the model itself).
    const auto up = algo == "fedkd" ? f.reply.tensors.with_prefix("update.", true) : f.reply.tensors;
    EXPECT_EQ(up.size(), f.reply.tensors.size()) << algo;
    EXPECT_EQ(names_of(up), cnn5.names()) << algo;
    for (const auto& [name, t] : cnn5) EXPECT_EQ(up.at(name).sizes(), t.sizes());
    // Client 0 uses cnn4 privately: its weights stay in the state, never in the reply.
    EXPECT_TRUE(st.tensors.contains("model.fc1.weight")) << algo;
    EXPECT_EQ(st.tensors.at("model.fc1.weight").size(0), 800) << algo;
  }
  // FedKD with SVD: the fc updates travel as factors, fewer floats than the dense student.
  {
    auto setup = setup_of(base_config("fedkd", {"fedkd.energy_start=0.5"}), 2);
    const auto& info = find_algorithm("fedkd");
    auto server = info.make_server(setup);
    ClientState st;
    auto f = fit_once(info, setup, *server, *data, 1, st);
    EXPECT_NEAR(f.sent.metric("svd_energy"), 0.5, 1e-12);
    // Energy grows linearly to fedkd.energy_end (0.98) over the 3 rounds.
    EXPECT_NEAR(server->configure_fit(3, 1).metric("svd_energy"), 0.5 + 2.0 / 3.0 * 0.48, 1e-12);
    EXPECT_TRUE(f.reply.tensors.contains("update.fc1.weight.svd_us"));
    EXPECT_FALSE(f.reply.tensors.contains("fc1.weight"));
    EXPECT_LT(f.reply.tensors.numel(), cnn5.numel() / 2);
    EXPECT_NEAR(f.reply.metric("upload_fraction"),
                static_cast<double>(f.reply.tensors.numel()) / cnn5.numel(), 1e-9);
    EXPECT_TRUE(st.tensors.contains("wh.weight"));
    EXPECT_EQ(st.tensors.at("wh.weight").sizes(), (std::vector<int64_t>{500, 500}));
    auto before = server->save_state().tensors.clone();
    server->aggregate(1, {{1, f.reply}});
    auto after = server->save_state().tensors;
    // The new student is the old one plus the recovered update.
    auto upd = svd_recover(f.reply.tensors.with_prefix("update.", true), before);
    EXPECT_TRUE(torch::allclose(after.at("fc1.weight"),
                                before.at("fc1.weight") + upd.at("fc1.weight")));
    EXPECT_FALSE(torch::equal(after.at("fc1.weight"), before.at("fc1.weight")));
  }
}

TEST(Distill, PrivateStateSurvivesRounds) {
  auto data = cluster_data(2);
  for (std::string algo : {"fedproto", "fd", "fml", "fedkd"}) {
    const auto& info = find_algorithm(algo);
    auto setup = setup_of(base_config(algo), 2);
    auto server = info.make_server(setup);
    ClientState st;
    fit_once(info, setup, *server, *data, 0, st);
    auto trained = st.tensors.clone();
    ASSERT_TRUE(trained.contains("model.fc2.weight")) << algo;

    // Evaluation reads the trained private model from the state: far better than a fresh one.
    auto client = info.make_client(setup);
    ClientContext ctx;
    ctx.client_id = 0;
    ctx.data = &data->clients[0];
    ctx.state = &st;
    auto msg = *server->configure_evaluate(2, 0);
    double acc_trained = client->evaluate(msg, ctx).metric("accuracy");
    EXPECT_GT(acc_trained, 0.9) << algo;
    ClientState fresh;
    ctx.state = &fresh;
    client->evaluate(msg, ctx);
    EXPECT_TRUE(fresh.empty()) << algo;  // evaluation never writes state

    // A second fit with lr 0 starts from the saved state and leaves it as it was.
    auto frozen = setup_of(Config::from_string("[hetero]\nmodels = [\"cnn4\", \"cnn5\"]\n"
                                               "[train]\nlr = 0.0\nbatch_size = 16\n"),
                           2);
    fit_once(info, frozen, *server, *data, 0, st, 2);
    for (const auto& [name, t] : trained)
      EXPECT_TRUE(torch::equal(st.tensors.at(name), t)) << algo << " " << name;
  }
}

TEST(Distill, ConfigErrorsNameTheKey) {
  auto expect_key = [](const std::string& algo, const std::string& set, const std::string& key) {
    try {
      auto setup = setup_of(base_config(algo, {set}), 2);
      const auto& info = find_algorithm(algo);
      info.make_server(setup);
      info.make_client(setup);
      FAIL() << "expected an error for " << key;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(key), std::string::npos) << e.what();
    }
  };
  expect_key("fedproto", "fedproto.inference=\"knn\"", "fedproto.inference");
  expect_key("fedproto", "hetero.models=[\"cnn1\", \"mlp\"]", "hetero.models");
  expect_key("fd", "fd.loss=\"l1\"", "fd.loss");
  expect_key("fml", "fml.alpha=1.5", "fml.alpha");
  expect_key("fml", "fml.shared_model=\"cnn9\"", "fml.shared_model");
  expect_key("fedkd", "fedkd.energy_end=0.0", "fedkd.energy_end");
}

class DistillEndToEnd : public testing::TestWithParam<std::string> {};

TEST_P(DistillEndToEnd, LearnsPersonalisedTask) {
  auto cfg = base_config(GetParam());
  Simulation sim(cfg, cluster_data(4));
  auto rows = sim.run();
  ASSERT_EQ(rows.size(), 3u);
  // Chance is 25% over four classes (50% within a client's two).
  EXPECT_GT(rows.back().at("personal_accuracy_mean"), 0.9) << GetParam();
  EXPECT_GT(rows.back().at("client_macs"), 0);
  EXPECT_EQ(rows.back().at("clients"), 4);
  // Every client keeps its private model between rounds.
  for (int64_t c = 0; c < 4; ++c) {
    auto st = sim.states().load(c);
    EXPECT_TRUE(st.tensors.contains("model.fc2.weight")) << c;
  }
  const double cnn5_bytes = 4.0 * module_state(*make_model_seeded("cnn5", {{1, 28, 28}, kClasses}, 0)).numel();
  if (GetParam() == "fedproto" || GetParam() == "fd") {
    // Only per-class vectors go up: far less than any model.
    EXPECT_LT(rows.back().at("bytes_up"), 4 * (4 * (kClasses * 500 + kClasses) + 4000));
  } else {
    EXPECT_GT(rows.back().at("bytes_down"), 4 * cnn5_bytes);
  }
}

TEST(DistillEndToEndVariants, FedProtoNearestPrototypeAndFdKdLoss) {
  auto data = cluster_data(4);
  auto proto = Simulation(base_config("fedproto", {"fedproto.inference=\"prototype\""}), data).run();
  EXPECT_GT(proto.back().at("personal_accuracy_mean"), 0.9);
  EXPECT_GT(proto.back().at("bytes_eval"), 0);  // the prototypes travel for evaluation
  auto fd = Simulation(base_config("fd", {"fd.loss=\"kd\"", "fd.temperature=2.0"}), data).run();
  EXPECT_GT(fd.back().at("personal_accuracy_mean"), 0.9);
}

INSTANTIATE_TEST_SUITE_P(Methods, DistillEndToEnd,
                         testing::Values("fedproto", "fd", "fml", "fedkd"),
                         [](const auto& info) { return info.param; });
