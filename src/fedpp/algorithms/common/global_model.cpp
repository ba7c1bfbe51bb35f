#include "fedpp/algorithms/common/global_model.hpp"

#include "fedpp/algorithms/common/hetero.hpp"  // evaluate_reply
#include "fedpp/core/error.hpp"
#include "fedpp/core/seed.hpp"
#include "fedpp/models/state_dict.hpp"

namespace fedpp {

torch::Tensor proximal_term(const std::vector<torch::Tensor>& params,
                            const std::vector<torch::Tensor>& anchor) {
  torch::Tensor sum = torch::zeros({}, params.at(0).options());
  for (size_t i = 0; i < params.size(); ++i) sum = sum + (params[i] - anchor[i]).pow(2).sum();
  return sum;
}

namespace {
ModelPtr global_architecture(const AlgorithmSetup& setup) {
  auto name = setup.cfg.get_choice("model.name", "fedavg_cnn", model_names());
  return make_model_seeded(name, setup.spec, derive_seed(setup.seed, Purpose::kInit, {0}));
}

// The initial global weights: the seeded model's, or model.init's (global_model.pt of an earlier
// run, or a PyTorch state dict of the same architecture).
NamedTensors initial_weights(const AlgorithmSetup& setup, Model& model) {
  NamedTensors w = module_state(model).clone();
  const auto init = setup.cfg.get_string("model.init", "");
  if (!init.empty()) {
    NamedTensors file = load_state_dict(init);
    check_state_dict_fits(file, model, model.model_name(), init);
    for (const auto& [n, t] : w) w.set(n, file.at(n).clone().contiguous());
  }
  return w;
}
}  // namespace

FedAvgServer::FedAvgServer(const AlgorithmSetup& setup)
    : FedAvgServer(setup, global_architecture(setup)) {}

FedAvgServer::FedAvgServer(const AlgorithmSetup& setup, ModelPtr model)
    : AveragingServer(initial_weights(setup, *model), "model '" + model->model_name() + "'"),
      setup_(setup),
      model_(std::move(model)) {}

std::optional<ExportedModel> FedAvgServer::global_model() const {
  return ExportedModel{model_->model_name(), global_, {}};
}

std::optional<Message> FedAvgServer::configure_evaluate(int64_t round, int64_t client_id) {
  return AveragingServer::configure_fit(round, client_id);
}

std::map<std::string, double> FedAvgServer::evaluate(int64_t, const Dataset& test) {
  load_module_state(*model_, global_);
  model_->eval();
  auto s = evaluate_logits(test, [&](const torch::Tensor& x) {
    return model_->forward(x.to(setup_.device)).cpu();
  });
  return {{"accuracy", s.accuracy}, {"loss", s.loss}};
}

FedAvgClient::FedAvgClient(const AlgorithmSetup& setup, double mu)
    : setup_(setup), train_(TrainOptions::from_config(setup.cfg)), mu_(mu) {
  auto name = setup.cfg.get_choice("model.name", "fedavg_cnn", model_names());
  model_ = make_model_seeded(name, setup.spec, 0);  // weights arrive with every message
  model_->to(setup.device);
}

Message FedAvgClient::fit(const Message& in, ClientContext& ctx) {
  load_module_state(*model_, in.tensors);
  model_->train();
  std::vector<torch::Tensor> params = model_->parameters();
  std::vector<torch::Tensor> anchor;
  if (mu_ > 0)
    for (const auto& p : params) anchor.push_back(p.detach().clone());
  auto opt = make_sgd(params, train_);
  const auto dev = ctx.device;
  auto stats = train_epochs(ctx.data->train, train_, ctx.seed, *opt,
                            [&](const torch::Tensor& x, const torch::Tensor& y,
                                const torch::Tensor&) {
                              auto loss = torch::nn::functional::cross_entropy(
                                  model_->forward(x.to(dev)), y.to(dev));
                              if (mu_ > 0) loss = loss + 0.5 * mu_ * proximal_term(params, anchor);
                              return loss;
                            });
  Message out;
  out.tensors = module_state(*model_).clone();
  out.metrics["num_samples"] = static_cast<double>(ctx.data->train.size());
  out.metrics["train_loss"] = stats.loss;
  // Training costs about 3x the forward pass (forward, input grads, weight grads).
  out.metrics["client_macs"] = 3.0 * static_cast<double>(model_->macs_per_sample()) *
                               static_cast<double>(stats.samples);
  return out;
}

Message FedAvgClient::evaluate(const Message& in, ClientContext& ctx) {
  load_module_state(*model_, in.tensors);
  return evaluate_reply(*model_, ctx);
}

}  // namespace fedpp
