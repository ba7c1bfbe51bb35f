#include "fedpp/algorithms/fedavg.hpp"

#include "fedpp/algorithms/hetero.hpp"  // evaluate_reply

#include "fedpp/core/error.hpp"
#include "fedpp/core/seed.hpp"
#include "fedpp/models/state_dict.hpp"

namespace fedpp {

NamedTensors weighted_average(const std::vector<Reply>& replies, const NamedTensors& like) {
  FEDPP_CHECK(!replies.empty(), "cannot average zero replies");
  double total = 0.0;
  for (const auto& r : replies) total += r.message.metric("num_samples");
  FEDPP_CHECK(total > 0, "replies report zero training samples in total");
  NamedTensors out;
  for (const auto& [name, ref] : like) {
    torch::Tensor acc;
    for (const auto& r : replies) {
      const auto& t = r.message.tensors.at(name);
      FEDPP_CHECK(t.sizes() == ref.sizes(),
                  "client " + std::to_string(r.client_id) + " sent '" + name + "' with shape " +
                      c10::str(t.sizes()) + ", expected " + c10::str(ref.sizes()));
      if (!ref.is_floating_point()) {  // counters such as BatchNorm's num_batches_tracked
        acc = t.clone();
        break;
      }
      auto w = r.message.metric("num_samples") / total;
      auto term = t.to(torch::kDouble) * w;
      acc = acc.defined() ? acc + term : term;
    }
    out.set(name, acc.to(ref.scalar_type()).contiguous());
  }
  return out;
}

torch::Tensor proximal_term(const std::vector<torch::Tensor>& params,
                            const std::vector<torch::Tensor>& anchor) {
  torch::Tensor sum = torch::zeros({}, params.at(0).options());
  for (size_t i = 0; i < params.size(); ++i) sum = sum + (params[i] - anchor[i]).pow(2).sum();
  return sum;
}

FedAvgServer::FedAvgServer(const AlgorithmSetup& setup) : setup_(setup) {
  auto name = setup.cfg.get_choice("model.name", "fedavg_cnn", model_names());
  model_ = make_model_seeded(name, setup.spec, derive_seed(setup.seed, Purpose::kInit, {0}));
  global_ = module_state(*model_).clone();
  // model.init: start from a saved model (global_model.pt of an earlier run, or a PyTorch
  // state dict of the same architecture).
  const auto init = setup.cfg.get_string("model.init", "");
  if (!init.empty()) {
    NamedTensors file = load_state_dict(init);
    check_state_dict_fits(file, *model_, name, init);
    for (const auto& [n, t] : global_) global_.set(n, file.at(n).clone().contiguous());
  }
}

std::optional<ExportedModel> FedAvgServer::global_model() const {
  return ExportedModel{model_->model_name(), global_};
}

Message FedAvgServer::configure_fit(int64_t, int64_t) {
  Message m;
  m.tensors = global_;
  return m;
}

std::optional<Message> FedAvgServer::configure_evaluate(int64_t round, int64_t client_id) {
  return FedAvgServer::configure_fit(round, client_id);
}

void FedAvgServer::aggregate(int64_t, const std::vector<Reply>& replies) {
  if (replies.empty()) return;  // nothing arrived: keep the model
  global_ = weighted_average(replies, global_);
}

std::map<std::string, double> FedAvgServer::evaluate(int64_t, const Dataset& test) {
  load_module_state(*model_, global_);
  model_->eval();
  auto s = evaluate_logits(test, [&](const torch::Tensor& x) {
    return model_->forward(x.to(setup_.device)).cpu();
  });
  return {{"accuracy", s.accuracy}, {"loss", s.loss}};
}

Message FedAvgServer::save_state() const {
  Message m;
  m.tensors = global_;
  return m;
}

void FedAvgServer::load_state(const Message& state) {
  for (const auto& [name, t] : global_)
    FEDPP_CHECK(state.tensors.contains(name) && state.tensors.at(name).sizes() == t.sizes(),
                "checkpoint does not match model '" + model_->model_name() + "' (tensor '" +
                    name + "')");
  global_ = state.tensors.clone();
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

AlgorithmInfo fedavg_info() {
  return {"fedavg", "FedAvg: sample-weighted averaging of locally trained models", false,
          [](const AlgorithmSetup& s) { return std::make_unique<FedAvgServer>(s); },
          [](const AlgorithmSetup& s) { return std::make_unique<FedAvgClient>(s, 0.0); }};
}

AlgorithmInfo fedprox_info() {
  return {"fedprox", "FedProx: FedAvg with the proximal term mu/2 ||w - w_global||^2", false,
          [](const AlgorithmSetup& s) { return std::make_unique<FedAvgServer>(s); },
          [](const AlgorithmSetup& s) {
            double mu = s.cfg.get_double("fedprox.mu", 0.01, 0.0, 1e3);
            return std::make_unique<FedAvgClient>(s, mu);
          }};
}

}  // namespace fedpp
