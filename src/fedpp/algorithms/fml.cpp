#include "fedpp/algorithms/fml.hpp"

#include "fedpp/algorithms/fedavg.hpp"
#include "fedpp/core/error.hpp"
#include "fedpp/core/seed.hpp"

namespace fedpp {

namespace {
constexpr const char* kPrefix = "model.";
}  // namespace

SharedModelServer::SharedModelServer(const AlgorithmSetup& setup, const std::string& model_key)
    : model_name_(setup.cfg.get_choice(model_key, "cnn5", model_names())) {
  client_models(setup.cfg, setup.num_clients);  // validates hetero.* before training
  auto model = make_model_seeded(model_name_, setup.spec,
                                 derive_seed(setup.seed, Purpose::kInit, {0}));
  global_ = module_state(*model).clone();
}

Message SharedModelServer::configure_fit(int64_t, int64_t) {
  Message m;
  m.tensors = global_;
  return m;
}

void SharedModelServer::aggregate(int64_t, const std::vector<Reply>& replies) {
  if (replies.empty()) return;
  global_ = weighted_average(replies, global_);
}

std::optional<Message> SharedModelServer::configure_evaluate(int64_t, int64_t) {
  return Message{};
}

Message SharedModelServer::save_state() const {
  Message m;
  m.tensors = global_;
  return m;
}

void SharedModelServer::load_state(const Message& state) {
  for (const auto& [name, t] : global_)
    FEDPP_CHECK(state.tensors.contains(name) && state.tensors.at(name).sizes() == t.sizes(),
                "checkpoint does not match shared model '" + model_name_ + "' (tensor '" + name +
                    "')");
  global_ = state.tensors.clone();
}

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
  Model& priv = cache_.get(model_of(models_, ctx.client_id), ctx.client_id, *ctx.state, kPrefix);
  priv.eval();
  return evaluation_reply(evaluate_logits(ctx.data->test, [&](const torch::Tensor& x) {
    return priv.forward(x.to(ctx.device)).cpu();
  }));
}

std::optional<ExportedModel> FmlClient::personal_model(int64_t client_id,
                                                       const ClientState& state) const {
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
