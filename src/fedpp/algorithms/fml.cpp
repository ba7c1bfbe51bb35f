#include "fedpp/algorithms/fml.hpp"

#include "fedpp/core/error.hpp"
#include "fedpp/core/seed.hpp"

namespace fedpp {

namespace {
constexpr const char* kPrefix = "model.";
}  // namespace

FmlClient::FmlClient(const AlgorithmSetup& setup)
    : train_(TrainOptions::from_config(setup.cfg)),
      alpha_(setup.cfg.get_double("fml.alpha", 0.5, 0.0, 1.0)),
      beta_(setup.cfg.get_double("fml.beta", 0.5, 0.0, 1.0)),
      models_(client_models(setup.cfg, setup.num_clients)),
      cache_(setup.spec, setup.seed, setup.device) {
  meme_ = make_model_seeded(setup.cfg.get_choice("fml.shared_model", "cnn5", model_names()),
                            setup.spec, 0);  // weights arrive with every message
  meme_->to(setup.device);
}

Message FmlClient::fit(const Message& in, ClientContext& ctx) {
  load_module_state(*meme_, in.tensors);
  Model& priv = cache_.get(model_of(models_, ctx.client_id), ctx.client_id, *ctx.state, kPrefix);
  priv.train();
  meme_->train();
  auto params = priv.parameters();
  for (const auto& p : meme_->parameters()) params.push_back(p);
  auto opt = make_sgd(params, train_);
  const auto dev = ctx.device;
  namespace F = torch::nn::functional;
  auto stats = train_epochs(
      ctx.data->train, train_, ctx.seed, *opt,
      [&](const torch::Tensor& x, const torch::Tensor& y, const torch::Tensor&) {
        auto xd = x.to(dev), yd = y.to(dev);
        auto p = priv.forward(xd), m = meme_->forward(xd);
        auto loss_p = alpha_ * F::cross_entropy(p, yd) + (1 - alpha_) * kd_loss(p, m, 1.0);
        auto loss_m = beta_ * F::cross_entropy(m, yd) + (1 - beta_) * kd_loss(m, p, 1.0);
        return loss_p + loss_m;
      });
  save_private(priv, *ctx.state, kPrefix);
  Message out;
  out.tensors = module_state(*meme_).clone();
  out.metrics["num_samples"] = static_cast<double>(ctx.data->train.size());
  out.metrics["train_loss"] = stats.loss;
  out.metrics["client_macs"] =
      3.0 * static_cast<double>(priv.macs_per_sample() + meme_->macs_per_sample()) *
      static_cast<double>(stats.samples);
  return out;
}

Message FmlClient::evaluate(const Message&, ClientContext& ctx) {
  return evaluate_reply(
      cache_.get(model_of(models_, ctx.client_id), ctx.client_id, *ctx.state, kPrefix), ctx);
}

std::optional<ExportedModel> FmlClient::personal_model(int64_t client_id,
    const ClientState& state, const Message&) const {
  return export_private(model_of(models_, client_id), state, kPrefix);
}

AlgorithmInfo fml_info() {
  return {"fml",
          "FML: private heterogeneous model and shared meme model trained by mutual learning; "
          "only the meme model travels (FedAvg)",
          true,
          [](const AlgorithmSetup& s) {
            return std::make_unique<SharedModelServer>(s, "fml.shared_model");
          },
          [](const AlgorithmSetup& s) { return std::make_unique<FmlClient>(s); }};
}

}  // namespace fedpp
