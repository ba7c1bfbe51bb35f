#include "fedpp/algorithms/lgfedavg.hpp"

#include <set>

#include "fedpp/algorithms/fedavg.hpp"
#include "fedpp/core/error.hpp"
#include "fedpp/core/seed.hpp"

namespace fedpp {

NamedTensors shared_head_init(const AlgorithmSetup& setup, const std::vector<std::string>& models,
                              uint64_t seed, const std::string& method) {
  FEDPP_CHECK(!models.empty(), method + " needs at least one client (data.num_clients)");
  auto first = make_model_seeded(models[0], setup.spec, seed);
  auto head = head_state(*first).clone();
  for (const auto& name : std::set<std::string>(models.begin(), models.end())) {
    auto m = make_model_seeded(name, setup.spec, 0);
    auto h = head_state(*m);
    bool same = h.names() == head.names();
    for (const auto& [n, t] : h) same = same && head.contains(n) && head.at(n).sizes() == t.sizes();
    FEDPP_CHECK(same, method + " shares the head, but model '" + name + "' has another head than '" +
                          models[0] + "'; choose hetero.models whose heads match");
  }
  return head;
}

void load_head(Model& m, const NamedTensors& head) {
  auto names = head_tensor_names(m);
  FEDPP_CHECK(head.names() == names, "the message does not hold this model's head (" +
                                         std::to_string(head.size()) + " tensors, expected " +
                                         std::to_string(names.size()) + ")");
  load_module_state(m, head, /*strict=*/false);
}

LgFedAvgServer::LgFedAvgServer(const AlgorithmSetup& setup) {
  auto models = client_models(setup.cfg, setup.num_clients);
  head_ = shared_head_init(setup, models, derive_seed(setup.seed, Purpose::kInit, {0}),
                           "LG-FedAvg");
}

Message LgFedAvgServer::configure_fit(int64_t, int64_t) {
  Message m;
  m.tensors = head_;
  return m;
}

void LgFedAvgServer::aggregate(int64_t, const std::vector<Reply>& replies) {
  if (replies.empty()) return;
  head_ = weighted_average(replies, head_);
}

std::optional<Message> LgFedAvgServer::configure_evaluate(int64_t round, int64_t client) {
  return configure_fit(round, client);
}

Message LgFedAvgServer::save_state() const {
  Message m;
  m.tensors = head_;
  return m;
}

void LgFedAvgServer::load_state(const Message& state) {
  for (const auto& [name, t] : head_)
    FEDPP_CHECK(state.tensors.contains(name) && state.tensors.at(name).sizes() == t.sizes(),
                "checkpoint does not hold the shared head (tensor '" + name + "')");
  head_ = state.tensors.clone();
}

LgFedAvgClient::LgFedAvgClient(const AlgorithmSetup& setup)
    : train_(TrainOptions::from_config(setup.cfg)),
      models_(client_models(setup.cfg, setup.num_clients)),
      cache_(setup.spec, setup.seed, setup.device) {}

Model& LgFedAvgClient::load(const Message& in, const ClientContext& ctx) {
  Model& m = cache_.get(model_of(models_, ctx.client_id), ctx.client_id, *ctx.state, "model.");
  load_head(m, in.tensors);
  return m;
}

Message LgFedAvgClient::fit(const Message& in, ClientContext& ctx) {
  Model& m = load(in, ctx);
  auto stats = train_private(m, ctx, train_);
  save_private(m, *ctx.state, "model.");
  Message out;
  out.tensors = head_state(m).clone();
  out.metrics["num_samples"] = static_cast<double>(ctx.data->train.size());
  out.metrics["train_loss"] = stats.loss;
  out.metrics["client_macs"] =
      3.0 * static_cast<double>(m.macs_per_sample()) * static_cast<double>(stats.samples);
  return out;
}

Message LgFedAvgClient::evaluate(const Message& in, ClientContext& ctx) {
  return evaluate_reply(load(in, ctx), ctx);
}

AlgorithmInfo lgfedavg_info() {
  return {"lgfedavg", "LG-FedAvg: private heterogeneous extractors, shared averaged head", true,
          [](const AlgorithmSetup& s) { return std::make_unique<LgFedAvgServer>(s); },
          [](const AlgorithmSetup& s) { return std::make_unique<LgFedAvgClient>(s); }};
}

}  // namespace fedpp
