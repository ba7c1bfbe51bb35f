#include "fedpp/algorithms/fedgh.hpp"

#include "fedpp/algorithms/common/heads.hpp"
#include "fedpp/core/error.hpp"
#include "fedpp/core/seed.hpp"

namespace fedpp {

std::pair<torch::Tensor, torch::Tensor> class_prototypes(Model& m, const Dataset& data,
                                                         torch::Device device) {
  torch::NoGradGuard no_grad;
  m.eval();
  const int64_t c = data.num_classes, n = data.size();
  torch::Tensor sum = torch::zeros({c, m.feature_dim()});
  torch::Tensor count = torch::zeros({c});
  for (int64_t start = 0; start < n; start += kInferenceBatch) {
    auto x = data.inputs(start, std::min(n, start + kInferenceBatch));
    auto y = data.y.slice(0, start, std::min(n, start + kInferenceBatch));
    sum.index_add_(0, y, m.features(x.to(device)).cpu().to(torch::kFloat));
    count.index_add_(0, y, torch::ones({y.size(0)}));
  }
  auto present = count.gt(0).nonzero().flatten();
  auto protos = sum.index_select(0, present) / count.index_select(0, present).unsqueeze(1);
  return {protos.contiguous(), present.to(torch::kFloat)};
}

FedGhServer::FedGhServer(const AlgorithmSetup& setup) : seed_(setup.seed) {
  auto models = client_models(setup.cfg, setup.num_clients);
  const uint64_t init = derive_seed(setup.seed, Purpose::kInit, {0});
  shared_head_init(setup, models, init, "FedGH");  // checks that all heads match
  model_ = make_model_seeded(models[0], setup.spec, init);
  const auto client = TrainOptions::from_config(setup.cfg);
  const auto procedure = setup.cfg.get_choice("fedgh.server_procedure", "paper", {"paper", "epochs"});
  server_.lr = setup.cfg.get_double("fedgh.server_lr", 0.01, 0.0, 1e3);
  if (procedure == "paper") {
    server_.batch_size = 1;
    server_.epochs = 1;
    server_.momentum = client.momentum;
    server_.weight_decay = client.weight_decay;
    server_.clip_grad_norm = client.clip_grad_norm;
  } else {
    server_.batch_size = client.batch_size;
    server_.epochs = setup.cfg.get_int("fedgh.server_epochs", 100, 0, 1000000);
  }
}

std::map<std::string, double> FedGhServer::aggregate_metrics() const {
  return {{"server_macs", last_macs_}};
}

NamedTensors FedGhServer::global_head() const { return head_state(*model_); }

Message FedGhServer::configure_fit(int64_t, int64_t) {
  Message m;
  m.tensors = global_head().clone();
  return m;
}

std::optional<Message> FedGhServer::configure_evaluate(int64_t round, int64_t client) {
  return configure_fit(round, client);
}

void FedGhServer::aggregate(int64_t round, const std::vector<Reply>& replies) {
  std::vector<torch::Tensor> xs, ys;
  const int64_t classes = model_->head(torch::zeros({1, model_->feature_dim()})).size(1);
  for (const auto& r : replies) {
    const auto& p = r.message.tensors.at("protos");
    auto y = r.message.tensors.at("labels").round().to(torch::kLong);
    FEDPP_CHECK(p.dim() == 2 && p.size(1) == model_->feature_dim() && y.dim() == 1 &&
                    y.size(0) == p.size(0),
                "client " + std::to_string(r.client_id) + " sent prototypes of shape " +
                    c10::str(p.sizes()) + " with " + std::to_string(y.numel()) + " labels");
    FEDPP_CHECK(y.numel() == 0 || (y.min().item<int64_t>() >= 0 &&
                                   y.max().item<int64_t>() < classes),
                "client " + std::to_string(r.client_id) + " sent a prototype label outside [0, " +
                    std::to_string(classes) + ")");
    xs.push_back(p.to(torch::kFloat));
    ys.push_back(y);
  }
  last_macs_ = 0.0;
  if (xs.empty() || server_.epochs == 0) return;
  Dataset pairs;
  pairs.x = torch::cat(xs);
  pairs.y = torch::cat(ys);
  pairs.num_classes = classes;
  if (pairs.size() == 0) return;
  auto names = head_tensor_names(*model_);
  std::vector<torch::Tensor> params;
  for (const auto& p : model_->named_parameters(true))
    if (std::find(names.begin(), names.end(), p.key()) != names.end()) params.push_back(p.value());
  model_->train();
  auto sgd = make_sgd(params, server_);
  auto stats = train_epochs(pairs, server_,
               derive_seed(seed_, Purpose::kMisc, {hash_name("fedgh"), static_cast<uint64_t>(round)}),
               *sgd, [&](const torch::Tensor& x, const torch::Tensor& y, const torch::Tensor&) {
                 return torch::nn::functional::cross_entropy(model_->head(x), y);
               });
  const double head_macs =
      static_cast<double>(model_->macs_per_sample() - model_->feature_macs_per_sample());
  last_macs_ = 3.0 * head_macs * static_cast<double>(stats.samples);
}

Message FedGhServer::save_state() const {
  Message m;
  m.tensors = global_head().clone();
  return m;
}

void FedGhServer::load_state(const Message& state) { load_head(*model_, state.tensors); }

FedGhClient::FedGhClient(const AlgorithmSetup& setup)
    : train_(TrainOptions::from_config(setup.cfg)),
      models_(client_models(setup.cfg, setup.num_clients)),
      cache_(setup.spec, setup.seed, setup.device) {}

Message FedGhClient::fit(const Message& in, ClientContext& ctx) {
  Model& m = cache_.get(model_of(models_, ctx.client_id), ctx.client_id, *ctx.state, "model.");
  load_head(m, in.tensors);
  auto stats = train_private(m, ctx, train_);
  save_private(m, *ctx.state, "model.");
  const double after_fit = evaluate_reply(m, ctx).metric("accuracy");
  auto [protos, labels] = class_prototypes(m, ctx.data->train, ctx.device);
  Message out;
  out.tensors.set("protos", protos);
  out.tensors.set("labels", labels);
  const double n = static_cast<double>(ctx.data->train.size());
  out.metrics["num_samples"] = n;
  out.metrics["train_loss"] = stats.loss;
  out.metrics["personal_accuracy_after_fit"] = after_fit;
  out.metrics["client_macs"] =
      3.0 * static_cast<double>(m.macs_per_sample()) * static_cast<double>(stats.samples) +
      static_cast<double>(m.feature_macs_per_sample()) * n;  // + the prototype pass
  return out;
}

Message FedGhClient::evaluate(const Message& in, ClientContext& ctx) {
  Model& m = cache_.get(model_of(models_, ctx.client_id), ctx.client_id, *ctx.state, "model.");
  load_head(m, in.tensors);
  return evaluate_reply(m, ctx);
}

std::optional<ExportedModel> FedGhClient::personal_model(int64_t client_id, const ClientState& state,
                                                   const Message& shared) const {
  return export_with_head(model_of(models_, client_id), state, "model.", shared);
}

AlgorithmInfo fedgh_info() {
  return {"fedgh",
          "FedGH: clients upload class prototypes; the server trains a shared global head on them",
          true, [](const AlgorithmSetup& s) { return std::make_unique<FedGhServer>(s); },
          [](const AlgorithmSetup& s) { return std::make_unique<FedGhClient>(s); }};
}

}  // namespace fedpp
