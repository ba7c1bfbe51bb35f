#include "fedpp/algorithms/fd.hpp"

#include "fedpp/core/error.hpp"

namespace fedpp {

namespace {
constexpr const char* kLogits = "logits";
constexpr const char* kPrefix = "model.";
}  // namespace

FdClient::FdClient(const AlgorithmSetup& setup)
    : train_(TrainOptions::from_config(setup.cfg)),
      lambda_(setup.cfg.get_double("fd.lambda", 1.0, 0.0, 1e6)),
      kd_(setup.cfg.get_choice("fd.loss", "kd", {"kd", "mse"}) == "kd"),
      temperature_(setup.cfg.get_double("fd.temperature", 1.0, 1e-3, 1e3)),
      classes_(setup.spec.num_classes),
      models_(client_models(setup.cfg, setup.num_clients)),
      cache_(setup.spec, setup.seed, setup.device) {}

Message FdClient::fit(const Message& in, ClientContext& ctx) {
  Model& model = cache_.get(model_of(models_, ctx.client_id), ctx.client_id, *ctx.state, kPrefix);
  std::optional<ClassMeans> global;
  if (in.tensors.contains(kLogits)) global = ClassMeans::get(in.tensors, kLogits, classes_);
  model.train();
  auto opt = make_sgd(model.parameters(), train_);
  const auto dev = ctx.device;
  auto stats = train_epochs(
      ctx.data->train, train_, ctx.seed, *opt,
      [&](const torch::Tensor& x, const torch::Tensor& y, const torch::Tensor&) {
        auto yd = y.to(dev);
        auto logits = model.forward(x.to(dev));
        auto loss = torch::nn::functional::cross_entropy(logits, yd);
        if (global && lambda_ > 0)
          loss = loss + lambda_ * (kd_ ? class_target_kd(logits, yd, *global, temperature_)
                                       : class_target_mse(logits, yd, *global));
        return loss;
      });
  save_private(model, *ctx.state, kPrefix);
  model.eval();
  auto means = class_means_over(
      ctx.data->train, [&](const torch::Tensor& x) { return model.forward(x.to(dev)); },
      classes_);
  Message out;
  means.put(out.tensors, kLogits);
  const double n = static_cast<double>(ctx.data->train.size());
  const double macs = static_cast<double>(model.macs_per_sample());
  out.metrics["num_samples"] = n;
  out.metrics["train_loss"] = stats.loss;
  out.metrics["client_macs"] = 3.0 * macs * static_cast<double>(stats.samples) + macs * n;
  return out;
}

Message FdClient::evaluate(const Message&, ClientContext& ctx) {
  return evaluate_reply(
      cache_.get(model_of(models_, ctx.client_id), ctx.client_id, *ctx.state, kPrefix), ctx);
}

std::optional<ExportedModel> FdClient::personal_model(int64_t client_id,
    const ClientState& state, const Message&) const {
  return export_private(model_of(models_, client_id), state, kPrefix);
}

AlgorithmInfo fd_info() {
  return {"fd",
          "FD (federated distillation): private heterogeneous models distilled towards "
          "count-weighted global per-class mean logits; only per-class logits travel",
          true,
          [](const AlgorithmSetup& s) {
            client_models(s.cfg, s.num_clients);  // validates hetero.* before training
            return std::make_unique<ClassMeansServer>(s, kLogits, false);
          },
          [](const AlgorithmSetup& s) { return std::make_unique<FdClient>(s); }};
}

}  // namespace fedpp
