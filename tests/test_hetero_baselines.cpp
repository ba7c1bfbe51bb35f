// The model-heterogeneous helpers (common/hetero.hpp) and the baselines Standalone, LG-FedAvg, FedGH.
#include <gtest/gtest.h>

#include "fedpp/algorithms/fedgh.hpp"
#include "fedpp/algorithms/common/hetero.hpp"
#include "fedpp/algorithms/common/heads.hpp"
#include "fedpp/algorithms/lgfedavg.hpp"
#include "fedpp/algorithms/standalone.hpp"
#include "fedpp/core/config.hpp"
#include "fedpp/core/error.hpp"
#include "fedpp/runtime/simulation.hpp"
#include "toy.hpp"

using namespace fedpp;

namespace {

const ModelSpec kSpec{{1, 28, 28}, 10};

ClientData client_data(int64_t n_train, int64_t n_test, uint64_t seed) {
  auto centres = torch::randn({10, 1, 28, 28}, at::detail::createCPUGenerator(7));
  auto gen = at::detail::createCPUGenerator(seed);
  auto make = [&](int64_t n) {
    Dataset d;
    d.y = torch::randint(0, 10, {n}, gen, torch::kLong);
    d.x = centres.index_select(0, d.y) + 0.5 * torch::randn({n, 1, 28, 28}, gen);
    d.num_classes = 10;
    return d;
  };
  return {make(n_train), make(n_test)};
}

AlgorithmSetup setup_of(const std::string& extra = "", int64_t clients = 5) {
  AlgorithmSetup s;
  s.cfg = Config::from_string("[train]\nlr = 0.01\nmomentum = 0.9\nbatch_size = 16\n" + extra);
  s.spec = kSpec;
  s.num_clients = clients;
  s.seed = 9;
  return s;
}

ClientContext context(int64_t id, const ClientData& data, ClientState& state) {
  ClientContext ctx;
  ctx.client_id = id;
  ctx.round = 1;
  ctx.data = &data;
  ctx.state = &state;
  ctx.seed = 3;
  return ctx;
}

Config run_config(const std::string& algorithm) {
  return toy::synthetic_pathological_config(algorithm);
}

}  // namespace

TEST(Hetero, ClientModels) {
  auto het = client_models(Config(), 7);
  EXPECT_EQ(het, (std::vector<std::string>{"cnn1", "cnn2", "cnn3", "cnn4", "cnn5", "cnn1",
                                           "cnn2"}));
  auto hom = client_models(Config::from_string("[hetero]\nsetting = \"homogeneous\"\n"), 3);
  EXPECT_EQ(hom, (std::vector<std::string>{"cnn1", "cnn1", "cnn1"}));
  auto own = client_models(Config::from_string("[hetero]\nmodels = [\"cnn3\", \"cnn5\"]\n"), 3);
  EXPECT_EQ(own, (std::vector<std::string>{"cnn3", "cnn5", "cnn3"}));
  try {
    client_models(Config::from_string("[hetero]\nmodels = [\"cnn9\"]\n"), 3);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("hetero.models"), std::string::npos) << e.what();
  }
  EXPECT_THROW(client_models(Config::from_string(
                                 "[hetero]\nsetting = \"homogeneous\"\nmodels = [\"cnn1\", \"cnn2\"]\n"),
                             2),
               Error);
  EXPECT_THROW(model_of(het, 7), Error);
}

TEST(Hetero, HeadAndFeatureStates) {
  auto m = make_model("cnn3", kSpec);
  EXPECT_EQ(head_tensor_names(*m), (std::vector<std::string>{"fc3.weight", "fc3.bias"}));
  EXPECT_EQ(head_state(*m).at("fc3.weight").sizes(), (std::vector<int64_t>{10, 500}));
  EXPECT_EQ(feature_state(*m).size() + head_state(*m).size(), module_state(*m).size());
  EXPECT_FALSE(feature_state(*m).contains("fc3.bias"));
}

TEST(Hetero, PrivateModelsAreSeededPerClientAndRoundTrip) {
  PrivateModels cache(kSpec, 4, torch::kCPU);
  ClientState empty;
  auto a = module_state(cache.get("cnn1", 0, empty, "m.")).clone();
  auto a2 = module_state(cache.get("cnn1", 0, empty, "m.")).clone();
  auto b = module_state(cache.get("cnn1", 1, empty, "m.")).clone();
  EXPECT_TRUE(torch::equal(a.flatten(), a2.flatten()));
  EXPECT_FALSE(torch::equal(a.flatten(), b.flatten()));
  // Save client 1's weights, disturb the cached instance, load them back.
  ClientState st;
  Model& m = cache.get("cnn1", 1, empty, "m.");
  save_private(m, st, "m.");
  EXPECT_TRUE(st.tensors.contains("m.conv1.weight"));
  cache.get("cnn1", 0, empty, "m.");
  EXPECT_TRUE(torch::equal(module_state(cache.get("cnn1", 1, st, "m.")).flatten(), b.flatten()));
  EXPECT_NE(private_init_seed(4, 0, 0), private_init_seed(4, 0, 1));
}

TEST(Standalone, NothingTravels) {
  auto s = setup_of();
  StandaloneServer server(s);
  StandaloneClient client(s);
  auto data = client_data(40, 20, 1);
  ClientState state;
  auto ctx = context(2, data, state);
  auto msg = server.configure_fit(1, 2);
  EXPECT_TRUE(msg.tensors.empty());
  auto reply = client.fit(msg, ctx);
  EXPECT_TRUE(reply.tensors.empty());
  EXPECT_EQ(reply.metric("num_samples"), 40);
  EXPECT_DOUBLE_EQ(reply.metric("client_macs"),
                   3.0 * make_model("cnn3", kSpec)->macs_per_sample() * 40);  // client 2: cnn3
  EXPECT_TRUE(state.tensors.contains("model.fc3.weight"));
  ASSERT_TRUE(server.configure_evaluate(1, 2).has_value());
  auto ev = client.evaluate(*server.configure_evaluate(1, 2), ctx);
  EXPECT_EQ(ev.metric("num_samples"), 20);
}

TEST(LgFedAvg, SharesAndAveragesOnlyTheHead) {
  auto s = setup_of();
  LgFedAvgServer server(s);
  LgFedAvgClient client(s);
  auto d0 = client_data(30, 10, 1), d1 = client_data(10, 10, 2);
  ClientState s0, s1;
  auto c0 = context(0, d0, s0), c1 = context(1, d1, s1);  // cnn1 and cnn2
  auto msg = server.configure_fit(1, 0);
  EXPECT_EQ(msg.tensors.names(), (std::vector<std::string>{"fc3.weight", "fc3.bias"}));
  std::vector<Reply> replies{{0, client.fit(msg, c0)}, {1, client.fit(server.configure_fit(1, 1), c1)}};
  EXPECT_EQ(replies[0].message.tensors.names(), msg.tensors.names());
  server.aggregate(1, replies);
  for (const auto& [n, t] : server.global_head()) {
    auto want = 0.75 * replies[0].message.tensors.at(n) + 0.25 * replies[1].message.tensors.at(n);
    EXPECT_TRUE(torch::allclose(t, want, 1e-5, 1e-6)) << n;
  }
  // The private extractor stays in the state; the head used for evaluation is the global one.
  EXPECT_TRUE(s0.tensors.contains("model.conv1.weight"));
  EXPECT_THROW(LgFedAvgServer(setup_of("[hetero]\nmodels = [\"cnn1\", \"mlp\"]\n")), Error);
}

TEST(FedGh, PrototypesAreClassMeansOfRepresentations) {
  auto m = make_model("cnn4", kSpec);
  auto data = client_data(50, 10, 4);
  auto [protos, labels] = class_prototypes(*m, data.train, torch::kCPU);
  torch::NoGradGuard no_grad;
  m->eval();
  auto rep = m->features(data.train.x);
  auto present = std::get<0>(torch::_unique(data.train.y));
  ASSERT_EQ(labels.size(0), present.size(0));
  for (int64_t i = 0; i < labels.size(0); ++i) {
    int64_t c = static_cast<int64_t>(labels[i].item<float>());
    EXPECT_EQ(c, present[i].item<int64_t>());
    auto want = rep.index({data.train.y.eq(c)}).mean(0);
    EXPECT_TRUE(torch::allclose(protos[i], want, 1e-4, 1e-5)) << c;
  }
}

TEST(FedGh, ServerTrainsTheGlobalHeadOnPrototypes) {
  // HtFLlib's procedure at the rate fedpp used before the paper's became the default.
  auto s = setup_of("[fedgh]\nserver_procedure = \"epochs\"\nserver_epochs = 200\nserver_lr = 1.0\n");
  FedGhServer server(s);
  FedGhClient client(s);
  auto data = client_data(60, 20, 5);
  ClientState state;
  auto ctx = context(3, data, state);
  auto reply = client.fit(server.configure_fit(1, 3), ctx);
  EXPECT_EQ(reply.tensors.names(), (std::vector<std::string>{"protos", "labels"}));
  EXPECT_EQ(reply.tensors.at("protos").size(1), 500);
  // The head after aggregation classifies the prototypes better than before.
  auto head_loss = [&](const NamedTensors& head) {
    auto m = make_model("cnn1", kSpec);
    load_head(*m, head);
    return torch::nn::functional::cross_entropy(m->head(reply.tensors.at("protos")),
                                                reply.tensors.at("labels").to(torch::kLong))
        .item<double>();
  };
  const double before = head_loss(server.global_head());
  server.aggregate(1, {{3, reply}});
  EXPECT_LT(head_loss(server.global_head()), 0.5 * before);
  // A label outside the classes is rejected with a reason.
  auto bad = reply;
  bad.tensors.set("labels", torch::full({reply.tensors.at("labels").size(0)}, 12.0));
  EXPECT_THROW(server.aggregate(2, {{3, bad}}), Error);
}

// The authors' server procedure (the default): one plain SGD step per prototype at the paper's
// learning rate. With a single prototype the new head is head - lr * grad, by hand.
TEST(FedGh, PaperProcedureTakesOneStepPerPrototype) {
  // No weight decay or clipping here; a first step with momentum is a plain step.
  auto s = setup_of("");
  FedGhServer server(s);
  auto head0 = server.global_head().clone();
  auto m = make_model("cnn1", kSpec);
  load_head(*m, head0);
  auto proto = torch::randn({1, 500}).abs();
  auto label = torch::tensor({3.0f});
  std::vector<torch::Tensor> params;
  auto names = head_tensor_names(*m);
  for (const auto& p : m->named_parameters(true))
    if (std::find(names.begin(), names.end(), p.key()) != names.end()) params.push_back(p.value());
  auto loss = torch::nn::functional::cross_entropy(m->head(proto), label.to(torch::kLong));
  auto grads = torch::autograd::grad({loss}, params);
  Reply r{0, {}};
  r.message.tensors.set("protos", proto);
  r.message.tensors.set("labels", label);
  r.message.metrics["num_samples"] = 10;
  server.aggregate(1, {r});
  auto head1 = server.global_head();
  size_t i = 0;
  for (const auto& p : m->named_parameters(true)) {
    if (std::find(names.begin(), names.end(), p.key()) == names.end()) continue;
    auto want = p.value().detach() - 0.01 * grads[i++];
    EXPECT_TRUE(torch::allclose(head1.at(p.key()), want, 1e-6, 1e-7)) << p.key();
  }
  // Multiply-adds: 3 x the head's forward per prototype, reported for the round.
  const double head_macs = static_cast<double>(m->macs_per_sample() - m->feature_macs_per_sample());
  EXPECT_EQ(server.aggregate_metrics().at("server_macs"), 3.0 * head_macs);
  Reply r5 = r;
  r5.message.tensors.set("protos", torch::randn({5, 500}).abs());
  r5.message.tensors.set("labels", torch::tensor({0.0f, 1.0f, 2.0f, 3.0f, 4.0f}));
  server.aggregate(2, {r5});
  EXPECT_EQ(server.aggregate_metrics().at("server_macs"), 5 * 3.0 * head_macs);
}

TEST(HeteroBaselines, LearnSyntheticDataEndToEnd) {
  for (std::string algo : {"standalone", "lgfedavg", "fedgh"}) {
    auto rows = Simulation(run_config(algo)).run();
    ASSERT_EQ(rows.size(), 3u) << algo;
    // Two classes per client: chance is 0.5. FedGH's client heads are replaced every round by
    // the server's prototype-trained head, which lags in so short a run.
    EXPECT_GT(rows.back().at("personal_accuracy_mean"), algo == "fedgh" ? 0.6 : 0.85) << algo;
    if (algo == "standalone") EXPECT_LT(rows.back().at("bytes_up_per_client"), 200) << algo;
  }
}
