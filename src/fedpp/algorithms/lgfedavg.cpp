#include "fedpp/algorithms/lgfedavg.hpp"

#include "fedpp/algorithms/common/heads.hpp"
#include "fedpp/core/error.hpp"
#include "fedpp/core/seed.hpp"

namespace fedpp {

LgFedAvgServer::LgFedAvgServer(const AlgorithmSetup& setup)
    : AveragingServer(shared_head_init(setup, client_models(setup.cfg, setup.num_clients),
                                       derive_seed(setup.seed, Purpose::kInit, {0}), "LG-FedAvg"),
                      "the shared head") {}

std::optional<Message> LgFedAvgServer::configure_evaluate(int64_t round, int64_t client) {
  return configure_fit(round, client);
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

std::optional<ExportedModel> LgFedAvgClient::personal_model(int64_t client_id, const ClientState& state,
                                                   const Message& shared) const {
  return export_with_head(model_of(models_, client_id), state, "model.", shared);
}

AlgorithmInfo lgfedavg_info() {
  return {"lgfedavg", "LG-FedAvg: private heterogeneous extractors, shared averaged head", true,
          [](const AlgorithmSetup& s) { return std::make_unique<LgFedAvgServer>(s); },
          [](const AlgorithmSetup& s) { return std::make_unique<LgFedAvgClient>(s); }};
}

}  // namespace fedpp
