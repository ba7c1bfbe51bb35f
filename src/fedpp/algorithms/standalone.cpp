#include "fedpp/algorithms/standalone.hpp"

namespace fedpp {

StandaloneServer::StandaloneServer(const AlgorithmSetup& setup) {
  client_models(setup.cfg, setup.num_clients);  // validates hetero.* for a server-only process
}

StandaloneClient::StandaloneClient(const AlgorithmSetup& setup)
    : train_(TrainOptions::from_config(setup.cfg)),
      models_(client_models(setup.cfg, setup.num_clients)),
      cache_(setup.spec, setup.seed, setup.device) {}

Message StandaloneClient::fit(const Message&, ClientContext& ctx) {
  Model& m = cache_.get(model_of(models_, ctx.client_id), ctx.client_id, *ctx.state, "model.");
  auto stats = train_private(m, ctx, train_);
  save_private(m, *ctx.state, "model.");
  Message out;
  out.metrics["num_samples"] = static_cast<double>(ctx.data->train.size());
  out.metrics["train_loss"] = stats.loss;
  out.metrics["client_macs"] =
      3.0 * static_cast<double>(m.macs_per_sample()) * static_cast<double>(stats.samples);
  return out;
}

Message StandaloneClient::evaluate(const Message&, ClientContext& ctx) {
  Model& m = cache_.get(model_of(models_, ctx.client_id), ctx.client_id, *ctx.state, "model.");
  return evaluate_reply(m, ctx);
}

std::optional<ExportedModel> StandaloneClient::personal_model(int64_t client_id,
    const ClientState& state, const Message&) const {
  return export_private(model_of(models_, client_id), state, "model.");
}

AlgorithmInfo standalone_info() {
  return {"standalone", "Standalone: every client trains its own (heterogeneous) model locally",
          true, [](const AlgorithmSetup& s) { return std::make_unique<StandaloneServer>(s); },
          [](const AlgorithmSetup& s) { return std::make_unique<StandaloneClient>(s); }};
}

}  // namespace fedpp
