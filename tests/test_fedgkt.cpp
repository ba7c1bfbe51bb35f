#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "fedpp/algorithms/fedgkt.hpp"
#include "fedpp/core/config.hpp"
#include "fedpp/core/error.hpp"
#include "fedpp/core/seed.hpp"
#include "fedpp/fl/training.hpp"
#include "fedpp/runtime/simulation.hpp"

using namespace fedpp;

namespace {

// Four separable Gaussian clusters in 1x8x8 (the same centres for every split).
Dataset clusters(int64_t n, uint64_t seed) {
  auto centres_gen = at::detail::createCPUGenerator(99);
  auto centres = torch::randn({4, 1, 8, 8}, centres_gen) * 2.0;
  auto gen = at::detail::createCPUGenerator(seed);
  Dataset d;
  d.y = torch::randint(0, 4, {n}, gen, torch::kLong);
  d.x = centres.index_select(0, d.y) + 0.5 * torch::randn({n, 1, 8, 8}, gen);
  d.num_classes = 4;
  d.name = "toy";
  return d;
}

std::shared_ptr<FederatedData> toy_data(int64_t clients, int64_t per_client) {
  auto data = std::make_shared<FederatedData>();
  for (int64_t c = 0; c < clients; ++c) {
    data->clients.push_back({clusters(per_client, 10 + c), clusters(per_client / 2, 100 + c)});
    data->summary.push_back({c, per_client, per_client / 2, {}});
  }
  data->global_test = clusters(64, 7);
  return data;
}

AlgorithmSetup toy_setup(const std::string& extra = "") {
  AlgorithmSetup s;
  s.cfg = Config::from_string("[fedgkt]\nserver_epochs = 1\nbatch_size = 4\n" + extra);
  s.spec = ModelSpec{{1, 8, 8}, 4};
  s.num_clients = 4;
  s.seed = 5;
  return s;
}

// A client reply as FedGktClient::fit builds it, with features chosen by the test and the
// rows listed in `idx` order.
Reply make_reply(int64_t client, const torch::Tensor& idx, uint64_t seed) {
  auto gen = at::detail::createCPUGenerator(seed);
  const int64_t n = idx.numel();
  Message m;
  m.tensors.set("features", torch::randn({n, 16, 8, 8}, gen));
  m.tensors.set("client_logits", torch::randn({n, 4}, gen));
  m.tensors.set("labels", torch::randint(0, 4, {n}, gen, torch::kLong));
  m.tensors.set("idx", idx);
  m.tensors.set("test_features", torch::randn({3, 16, 8, 8}, gen));
  m.tensors.set("test_labels", torch::randint(0, 4, {3}, gen, torch::kLong));
  m.metrics["num_samples"] = static_cast<double>(n);
  return Reply{client, m};
}

Config gkt_config(const std::string& extra = "") {
  return Config::from_string(
      "seed = 3\nrounds = 3\n[algorithm]\nname = \"fedgkt\"\n"
      "[fedgkt]\nserver_epochs = 3\nclient_epochs = 3\nbatch_size = 32\nclient_lr = 0.01\n"
      "server_lr = 0.003\n"
      "[codec.up]\nfloat16 = true\n"
      "[runtime]\nworkers = 2\nthreads = 1\n[output]\nquiet = true\n" + extra);
}

}  // namespace

TEST(FedGkt, ModelWiringForCifarAndMnistShapes) {
  for (std::vector<int64_t> shape : {std::vector<int64_t>{3, 32, 32}, {1, 28, 28}}) {
    ModelSpec spec{shape, 10};
    auto client = std::dynamic_pointer_cast<ResNet8>(make_model("resnet8", spec));
    ASSERT_TRUE(client);
    client->eval();
    EXPECT_EQ(client->feature_map_shape(), (std::vector<int64_t>{16, shape[1], shape[2]}));
    auto x = torch::randn({2, shape[0], shape[1], shape[2]});
    auto h = client->feature_map(x);
    EXPECT_EQ(h.sizes(), (c10::IntArrayRef{2, 16, shape[1], shape[2]}));
    EXPECT_TRUE(torch::allclose(client->forward_from_map(h), client->forward(x)));
    const int64_t stem = shape[0] * 16 * 9 + 2 * 16;  // conv3x3 + BN weight and bias
    for (std::string depth : {"56", "110"}) {
      ModelSpec map_spec{client->feature_map_shape(), 10};
      auto server = make_model("resnet" + depth + "_server", map_spec);
      auto full = make_model("resnet" + depth, spec);
      server->eval();
      EXPECT_EQ(server->forward(h).sizes(), (c10::IntArrayRef{2, 10}));
      // The server model is the full model without its stem.
      EXPECT_EQ(count_parameters(*full), count_parameters(*server) + stem);
      // Client vs FedAvg-on-the-big-model compute per sample: the paper's 9x / 17x.
      const double ratio = double(full->macs_per_sample()) / double(client->macs_per_sample());
      EXPECT_GT(ratio, depth == "56" ? 8.0 : 16.0) << depth;
      EXPECT_LT(ratio, depth == "56" ? 10.0 : 19.0) << depth;
    }
  }
  // The FedGKT server builds its model on the feature-map shape.
  auto setup = toy_setup("server_model = \"resnet110_server\"\n");
  setup.spec = ModelSpec{{1, 28, 28}, 10};
  FedGktServer server(setup);
  server.model().eval();
  EXPECT_EQ(server.model().forward(torch::randn({2, 16, 28, 28})).sizes(),
            (c10::IntArrayRef{2, 10}));
  EXPECT_EQ(server.model().model_name(), "resnet110_server");
}

TEST(FedGkt, DistillationLossMatchesHandValue) {
  // Row 0: teacher softmax(ln3, 0) = (0.75, 0.25) at T = 3, student (0.5, 0.5):
  //   KL = 0.75 ln 1.5 + 0.25 ln 0.5 = 0.1308120; times T^2 = 1.1773083.
  // Row 1: student equals teacher: 0. Mean over rows: 0.5886541.
  const double t = 3.0;
  auto teacher = torch::tensor({{t * std::log(3.0), 0.0}, {1.0, 2.0}}, torch::kDouble);
  auto student = torch::tensor({{0.0, 0.0}, {1.0, 2.0}}, torch::kDouble).requires_grad_(true);
  auto loss = kd_loss(student, teacher, t);
  EXPECT_NEAR(loss.item<double>(), 0.5 * 9.0 * (0.75 * std::log(1.5) + 0.25 * std::log(0.5)),
              1e-12);
  EXPECT_NEAR(loss.item<double>(), 0.5886541, 1e-6);
  loss.backward();
  // d/ds of T^2 KL / B = T (p_s - p_t) / B: row 0 -> 3 * (0.5 - 0.75) / 2 = -0.375.
  EXPECT_NEAR(student.grad()[0][0].item<double>(), -0.375, 1e-12);
  EXPECT_NEAR(student.grad()[1].abs().sum().item<double>(), 0.0, 1e-12);
}

TEST(FedGkt, PlateauSchedulerReducesAfterPatience) {
  auto p = torch::zeros({1}, torch::requires_grad());
  torch::optim::Adam adam({p}, torch::optim::AdamOptions(1.0));
  PlateauScheduler s(0.5, 2);
  std::vector<double> lrs;
  for (double loss : {1.0, 0.5, 0.5, 0.5, 0.5, 0.4, 0.4, 0.4, 0.4}) {
    s.step(loss, adam);
    lrs.push_back(adam.param_groups()[0].options().get_lr());
  }
  EXPECT_EQ(lrs, (std::vector<double>{1, 1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.25}));
}

TEST(FedGkt, AdamStateRoundTrips) {
  auto m = torch::nn::Linear(3, 2);
  torch::optim::Adam a(m->parameters(), torch::optim::AdamOptions(0.1));
  for (int i = 0; i < 3; ++i) {
    a.zero_grad();
    m->forward(torch::ones({1, 3})).sum().backward();
    a.step();
  }
  auto saved = adam_state(a, *m);
  EXPECT_EQ(saved.size(), 6u);
  EXPECT_EQ(saved.at("weight.step").item<int64_t>(), 3);
  torch::optim::Adam b(m->parameters(), torch::optim::AdamOptions(0.1));
  load_adam_state(b, *m, saved);
  auto again = adam_state(b, *m);
  for (const auto& [name, t] : saved) EXPECT_TRUE(torch::equal(t, again.at(name))) << name;
}

TEST(FedGkt, ClientStoresServerLogitsByRowAndReplies) {
  auto setup = toy_setup("send_test_features = true\n");
  FedGktClient client(setup);
  ClientData data{clusters(10, 1), clusters(6, 2)};
  ClientState state;
  ClientContext ctx;
  ctx.client_id = 2;
  ctx.round = 2;
  ctx.data = &data;
  ctx.state = &state;
  ctx.seed = 11;
  // Logits for the rows in a shuffled order: row r's logits are (r, -r, 2r, 0).
  auto idx = torch::tensor({7, 2, 9, 0, 4, 1, 8, 3, 6, 5}, torch::kLong);
  auto r = idx.to(torch::kFloat);
  auto z = torch::stack({r, -r, 2 * r, torch::zeros_like(r)}, 1);
  Message in;
  in.tensors.set("server_logits", z);
  in.tensors.set("server_idx", idx);
  Message out = client.fit(in, ctx);

  auto stored = state.tensors.at("kd.logits");
  for (int64_t row = 0; row < 10; ++row) {
    double v = static_cast<double>(row);
    EXPECT_TRUE(torch::equal(stored[row], torch::tensor({float(v), float(-v), float(2 * v), 0.f})))
        << row;
  }
  EXPECT_TRUE(state.tensors.at("kd.have").all().item<bool>());
  EXPECT_TRUE(state.tensors.contains("model.fc.weight"));
  EXPECT_TRUE(state.tensors.contains("adam.fc.weight.exp_avg"));

  EXPECT_EQ(out.tensors.at("features").sizes(), (c10::IntArrayRef{10, 16, 8, 8}));
  EXPECT_EQ(out.tensors.at("client_logits").sizes(), (c10::IntArrayRef{10, 4}));
  EXPECT_TRUE(torch::equal(out.tensors.at("labels"), data.train.y));
  EXPECT_TRUE(torch::equal(out.tensors.at("idx"), torch::arange(10, torch::kLong)));
  EXPECT_EQ(out.tensors.at("test_features").sizes(), (c10::IntArrayRef{6, 16, 8, 8}));
  EXPECT_EQ(out.metric("num_samples"), 10);
  // Its resnet8, for the server's evaluation on the global test set.
  EXPECT_TRUE(torch::equal(out.tensors.at("eval.fc.weight"), state.tensors.at("model.fc.weight")));
  // 1 epoch of training (3x forward) + the extraction pass + the stem on the test rows.
  auto m = make_model("resnet8", setup.spec);
  auto r8 = std::dynamic_pointer_cast<ResNet8>(m);
  const double expect = 3.0 * r8->macs_per_sample() * 10 + r8->macs_per_sample() * 10 +
                        double(r8->feature_map_macs_per_sample()) * 6;
  EXPECT_EQ(out.metric("client_macs"), expect);

  // The same round without server logits trains with CE only: a different loss.
  ClientState fresh;
  ctx.state = &fresh;
  Message plain = client.fit(Message{}, ctx);
  EXPECT_FALSE(fresh.tensors.contains("kd.logits"));
  EXPECT_NE(plain.metric("train_loss"), out.metric("train_loss"));
  // Rows outside the client's data are rejected.
  in.tensors.set("server_idx", idx + 1);
  EXPECT_THROW(client.fit(in, ctx), Error);
}

TEST(FedGkt, ServerReturnsEachClientItsOwnLogitsPerSample) {
  FedGktServer server(toy_setup("cache_dtype = \"float32\"\n"));
  EXPECT_TRUE(server.configure_fit(1, 0).tensors.empty());  // round 1: nothing yet
  auto idx0 = torch::tensor({4, 0, 3, 1, 2}, torch::kLong);
  auto idx3 = torch::tensor({6, 5, 4, 3, 2, 1, 0}, torch::kLong);
  std::vector<Reply> replies = {make_reply(0, idx0, 1), make_reply(3, idx3, 2)};
  server.aggregate(1, replies);
  server.model().eval();
  torch::NoGradGuard no_grad;
  for (const auto& r : replies) {
    Message m = server.configure_fit(2, r.client_id);
    const auto& got_idx = m.tensors.at("server_idx");
    const auto& got = m.tensors.at("server_logits");
    ASSERT_EQ(got.size(0), r.message.tensors.at("idx").size(0)) << r.client_id;
    // Logit row j belongs to the sample with index got_idx[j]: the server model applied to
    // that sample's own feature map.
    for (int64_t j = 0; j < got.size(0); ++j) {
      const int64_t row = got_idx[j].item<int64_t>();
      auto pos = (r.message.tensors.at("idx") == row).nonzero().item<int64_t>();
      auto expect = server.model().forward(r.message.tensors.at("features")[pos].unsqueeze(0));
      EXPECT_TRUE(torch::allclose(got[j], expect[0], 1e-4, 1e-5))
          << "client " << r.client_id << " row " << row;
    }
  }
  EXPECT_TRUE(server.configure_fit(2, 1).tensors.empty());  // client 1 never uploaded
  auto ev = server.evaluate(1, Dataset{});
  // Without a global test set and client models only the personalised column exists.
  EXPECT_FALSE(ev.count("accuracy"));
  EXPECT_LE(ev.at("personal_server_accuracy_min"), ev.at("personal_server_accuracy"));
  EXPECT_GT(ev.at("server_macs"), 0);
}

// The paper's evaluation: every client's extractor followed by the server model over the whole
// global test set (mean and worst client), and every client's resnet8 alone on the same set.
TEST(FedGkt, EvaluatesEveryClientPathOnTheGlobalTestSet) {
  auto setup = toy_setup();
  FedGktServer server(setup);
  std::vector<std::shared_ptr<ResNet8>> clients;
  std::vector<Reply> replies;
  for (int64_t k : {0, 2}) {
    auto r = make_reply(k, torch::arange(5, torch::kLong), 30 + k);
    auto m = std::dynamic_pointer_cast<ResNet8>(make_model_seeded("resnet8", setup.spec, 40 + k));
    for (const auto& [n, t] : module_state(*m)) r.message.tensors.set("eval." + n, t.clone());
    clients.push_back(m);
    replies.push_back(r);
  }
  server.aggregate(1, replies);
  const Dataset test = clusters(40, 77);
  auto ev = server.evaluate(1, test);
  torch::NoGradGuard no_grad;
  server.model().eval();
  std::vector<double> via_server, alone;
  for (auto& m : clients) {
    m->eval();
    via_server.push_back(
        server.model().forward(m->feature_map(test.x)).argmax(1).eq(test.y).sum().item<double>() / 40);
    alone.push_back(m->forward(test.x).argmax(1).eq(test.y).sum().item<double>() / 40);
  }
  EXPECT_NEAR(ev.at("accuracy"), (via_server[0] + via_server[1]) / 2, 1e-12);
  EXPECT_NEAR(ev.at("accuracy_min"), std::min(via_server[0], via_server[1]), 1e-12);
  EXPECT_NEAR(ev.at("client_accuracy"), (alone[0] + alone[1]) / 2, 1e-12);
  EXPECT_NEAR(ev.at("client_accuracy_min"), std::min(alone[0], alone[1]), 1e-12);
  // A reply whose evaluation model does not fit resnet8 is rejected as a whole.
  auto bad = replies[0];
  bad.message.tensors.set("eval.fc.weight", torch::zeros({3, 3}));
  EXPECT_THROW(server.aggregate(2, {bad}), Error);
  // The client models survive a checkpoint.
  FedGktServer resumed(setup);
  resumed.load_state(server.save_state());
  EXPECT_EQ(resumed.evaluate(1, test).at("accuracy"), ev.at("accuracy"));
}

// The teacher logits in a training batch are those of the batch's own samples: with
// client_lr = 0 the model does not move, so the reported loss can be rebuilt batch by batch
// from the shuffle train_epochs uses, and it differs from a loss with the teachers taken in
// batch-position order (the reference code's defect).
TEST(FedGkt, KdTargetsOfABatchAreThoseOfItsSamples) {
  auto setup = toy_setup("client_lr = 0.0\nweight_decay = 0.0\nalpha = 5.0\n");
  FedGktClient client(setup);
  ClientData data{clusters(10, 1), clusters(6, 2)};
  ClientState state;
  ClientContext ctx;
  ctx.client_id = 1;
  ctx.round = 1;
  ctx.data = &data;
  ctx.state = &state;
  ctx.seed = 11;
  client.fit(Message{}, ctx);  // round 1: no teachers yet; stores the (unchanged) model
  auto m = std::dynamic_pointer_cast<ResNet8>(make_model("resnet8", setup.spec));
  load_module_state(*m, state.tensors.with_prefix("model.", true));
  auto teacher = torch::randn({10, 4}, at::detail::createCPUGenerator(3)) * 4.0;
  Message in;
  in.tensors.set("server_logits", teacher);
  in.tensors.set("server_idx", torch::arange(10, torch::kLong));
  ctx.round = 2;
  ctx.seed = 12;
  auto out = client.fit(in, ctx);
  // The batches train_epochs draws: shuffled_order(n, derive_seed(seed, {epoch})), batch 4.
  auto order = shuffled_order(10, derive_seed(12, {0}));
  torch::NoGradGuard no_grad;
  m->train();
  double own = 0, positional = 0;
  for (int64_t start = 0; start < 10; start += 4) {
    const int64_t end = std::min<int64_t>(10, start + 4);
    auto idx = torch::tensor(std::vector<int64_t>(order.begin() + start, order.begin() + end));
    auto z = m->forward(data.train.x.index_select(0, idx));
    auto ce = torch::nn::functional::cross_entropy(z, data.train.y.index_select(0, idx));
    auto pos = torch::arange(start, end, torch::kLong);
    own += (ce + 5.0 * kd_loss(z, teacher.index_select(0, idx), 3.0)).item<double>() * (end - start);
    positional +=
        (ce + 5.0 * kd_loss(z, teacher.index_select(0, pos), 3.0)).item<double>() * (end - start);
  }
  EXPECT_NEAR(out.metric("train_loss"), own / 10, 1e-5);
  EXPECT_GT(std::abs(out.metric("train_loss") - positional / 10), 1e-3);
}

TEST(FedGkt, CacheReplacesAndStoresHalfPrecision) {
  FedGktServer server(toy_setup());
  server.aggregate(1, {make_reply(2, torch::arange(5, torch::kLong), 1)});
  const int64_t first = server.cache().bytes_in_memory();
  server.aggregate(2, {make_reply(2, torch::arange(3, torch::kLong), 2)});
  EXPECT_EQ(server.cache().size(), 1u);
  auto e = server.cache().get(2);
  EXPECT_EQ(e.labels.numel(), 3);
  EXPECT_EQ(e.features.scalar_type(), torch::kHalf);
  EXPECT_EQ(server.cache().bytes_in_memory(), e.bytes());
  EXPECT_LT(server.cache().bytes_in_memory(), first);
  EXPECT_EQ(server.configure_fit(3, 2).tensors.at("server_logits").size(0), 3);
  // float16 features take half the bytes of float32.
  FeatureCache f16(torch::kHalf, 1 << 30), f32(torch::kFloat, 1 << 30);
  CacheEntry entry{torch::randn({4, 16, 8, 8}), torch::randn({4, 4}),
                   torch::zeros({4}, torch::kLong), torch::arange(4, torch::kLong), {}, {}};
  f16.put(0, entry);
  f32.put(0, entry);
  EXPECT_EQ(f32.bytes_in_memory() - f16.bytes_in_memory(), 4 * 16 * 8 * 8 * 2);
}

TEST(FedGkt, SpillingToDiskGivesIdenticalResults) {
  auto dir = testing::TempDir() + "/fedgkt_spill_test";
  std::filesystem::remove_all(dir);
  FedGktServer in_memory(toy_setup());
  FedGktServer on_disk(toy_setup("cache_max_bytes = 0\ncache_dir = \"" + dir + "\"\n"));
  for (int64_t round = 1; round <= 2; ++round) {
    std::vector<Reply> replies = {make_reply(0, torch::arange(6, torch::kLong), 10 + round),
                                  make_reply(1, torch::arange(4, torch::kLong), 20 + round)};
    in_memory.aggregate(round, replies);
    on_disk.aggregate(round, replies);
  }
  EXPECT_EQ(on_disk.cache().spilled_entries(), 2);
  EXPECT_EQ(on_disk.cache().bytes_in_memory(), 0);
  EXPECT_EQ(on_disk.cache().bytes_on_disk(), in_memory.cache().bytes_in_memory());
  EXPECT_TRUE(std::filesystem::exists(dir + "/client_0.pt"));
  for (int64_t c : {0, 1})
    EXPECT_TRUE(torch::equal(in_memory.configure_fit(3, c).tensors.at("server_logits"),
                             on_disk.configure_fit(3, c).tensors.at("server_logits")));
  auto a = in_memory.evaluate(2, Dataset{});
  auto b = on_disk.evaluate(2, Dataset{});
  EXPECT_EQ(a.at("personal_server_accuracy"), b.at("personal_server_accuracy"));
  EXPECT_EQ(a.at("server_train_loss"), b.at("server_train_loss"));
  // A budget of one entry keeps the newest in memory and spills the older one.
  CacheEntry e{torch::randn({4, 16, 8, 8}), torch::randn({4, 4}), torch::zeros({4}, torch::kLong),
               torch::arange(4, torch::kLong), {}, {}};
  FeatureCache one(torch::kHalf, 4 * 16 * 64 * 2 + 4 * 4 * 4 + 2 * 4 * 8 + 100);
  one.put(0, e);
  one.put(1, e);
  EXPECT_EQ(one.spilled_entries(), 1);
  EXPECT_TRUE(torch::equal(one.get(0).features, one.get(1).features));
}

TEST(FedGkt, ServerCheckpointRoundTrips) {
  FedGktServer a(toy_setup());
  a.aggregate(1, {make_reply(0, torch::arange(5, torch::kLong), 1)});
  FedGktServer b(toy_setup());
  b.load_state(a.save_state());
  EXPECT_TRUE(torch::equal(a.configure_fit(2, 0).tensors.at("server_logits"),
                           b.configure_fit(2, 0).tensors.at("server_logits")));
  EXPECT_TRUE(torch::equal(a.model().parameters()[0], b.model().parameters()[0]));
}

TEST(FedGkt, BadConfigNamesTheKey) {
  try {
    FedGktServer s(toy_setup("cache_dtype = \"int8\"\n"));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("fedgkt.cache_dtype"), std::string::npos) << e.what();
  }
}

TEST(FedGkt, EndToEndLearnsToyTask) {
  auto data = toy_data(4, 64);
  auto rows = Simulation(gkt_config(), data).run();
  ASSERT_EQ(rows.size(), 3u);
  const auto& last = rows.back();
  // Chance is 25%. On the global test set: (a) each client's extractor + the server model,
  // (b) each client's resnet8 alone; (c) the client model on its own split.
  EXPECT_GT(last.at("accuracy"), 0.85);
  EXPECT_GT(last.at("accuracy_min"), 0.8);
  EXPECT_LE(last.at("accuracy_min"), last.at("accuracy"));
  EXPECT_GT(last.at("client_accuracy"), 0.6);
  EXPECT_GT(last.at("personal_accuracy_mean"), 0.6);
  EXPECT_GT(last.at("client_macs"), 0);
  // Up: the 64 train feature maps of 16x8x8 per client as float16, plus its resnet8 weights
  // (small tensors travel raw, float32) for evaluation.
  const double maps = 4 * 64 * 16 * 8 * 8;
  double r8 = 0;
  for (const auto& [n, t] : module_state(*make_model("resnet8", ModelSpec{{1, 8, 8}, 4})))
    r8 += static_cast<double>(t.numel() * t.element_size());
  EXPECT_GT(last.at("bytes_up"), 2 * maps + 4 * r8);
  EXPECT_LT(last.at("bytes_up"), (2 * maps + 4 * r8) * 1.1);
  // Down: 64 x 4 float32 logits + 64 int64 indices per client (nothing in round 1).
  EXPECT_LT(rows.front().at("bytes_down"), 4 * 200);
  EXPECT_GT(last.at("bytes_down"), 4 * 64 * (4 * 4 + 8));
  // Same seed, same numbers.
  auto cfg = gkt_config();
  cfg.set("rounds=1");
  auto again = Simulation(cfg, data).run();
  EXPECT_EQ(again.front().at("accuracy"), rows.front().at("accuracy"));
  EXPECT_EQ(again.front().at("server_train_loss"), rows.front().at("server_train_loss"));
}
