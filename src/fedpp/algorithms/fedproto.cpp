#include "fedpp/algorithms/fedproto.hpp"

#include <set>

#include "fedpp/core/error.hpp"

namespace fedpp {

namespace {
constexpr const char* kProtos = "protos";
constexpr const char* kPrefix = "model.";
}  // namespace

int64_t common_feature_dim(const AlgorithmSetup& setup, const std::string& method) {
  auto names = client_models(setup.cfg, setup.num_clients);
  int64_t dim = -1;
  std::string first;
  for (const auto& name : std::set<std::string>(names.begin(), names.end())) {
    auto d = make_model_seeded(name, setup.spec, 0)->feature_dim();
    FEDPP_CHECK(dim < 0 || d == dim,
                method + " needs every client model to have the same representation size, but '" +
                    first + "' has " + std::to_string(dim) + " and '" + name + "' has " +
                    std::to_string(d) + "; change hetero.models");
    dim = d;
    first = name;
  }
  return dim;
}

FedProtoClient::FedProtoClient(const AlgorithmSetup& setup)
    : train_(TrainOptions::from_config(setup.cfg)),
      lambda_(setup.cfg.get_double("fedproto.lambda", 1.0, 0.0, 1e6)),
      prototype_inference_(setup.cfg.get_choice("fedproto.inference", "head",
                                                {"head", "prototype"}) == "prototype"),
      classes_(setup.spec.num_classes),
      models_(client_models(setup.cfg, setup.num_clients)),
      cache_(setup.spec, setup.seed, setup.device) {}

Message FedProtoClient::fit(const Message& in, ClientContext& ctx) {
  Model& model = cache_.get(model_of(models_, ctx.client_id), ctx.client_id, *ctx.state, kPrefix);
  std::optional<ClassMeans> global;
  if (in.tensors.contains(kProtos)) global = ClassMeans::get(in.tensors, kProtos, classes_);
  model.train();
  auto opt = make_sgd(model.parameters(), train_);
  const auto dev = ctx.device;
  auto stats = train_epochs(ctx.data->train, train_, ctx.seed, *opt,
                            [&](const torch::Tensor& x, const torch::Tensor& y,
                                const torch::Tensor&) {
                              auto yd = y.to(dev);
                              auto rep = model.features(x.to(dev));
                              auto loss = torch::nn::functional::cross_entropy(model.head(rep), yd);
                              if (global && lambda_ > 0)
                                loss = loss + lambda_ * class_target_mse(rep, yd, *global);
                              return loss;
                            });
  save_private(model, *ctx.state, kPrefix);
  model.eval();
  auto protos = class_means_over(
      ctx.data->train, [&](const torch::Tensor& x) { return model.features(x.to(dev)); },
      classes_);
  Message out;
  protos.put(out.tensors, kProtos);
  const double n = static_cast<double>(ctx.data->train.size());
  out.metrics["num_samples"] = n;
  out.metrics["train_loss"] = stats.loss;
  out.metrics["client_macs"] =
      3.0 * static_cast<double>(model.macs_per_sample()) * static_cast<double>(stats.samples) +
      static_cast<double>(model.feature_macs_per_sample()) * n;
  return out;
}

Message FedProtoClient::evaluate(const Message& in, ClientContext& ctx) {
  Model& model = cache_.get(model_of(models_, ctx.client_id), ctx.client_id, *ctx.state, kPrefix);
  model.eval();
  const auto dev = ctx.device;
  if (prototype_inference_ && in.tensors.contains(kProtos)) {
    auto global = ClassMeans::get(in.tensors, kProtos, classes_);
    auto protos = global.means.to(dev);
    auto absent = global.counts.to(dev).le(0);
    return evaluation_reply(evaluate_logits(ctx.data->test, [&](const torch::Tensor& x) {
      auto d2 = torch::cdist(model.features(x.to(dev)), protos).pow(2);
      // Classes without a global prototype can never be the nearest.
      return (-d2).masked_fill(absent.unsqueeze(0), -1e9).cpu();
    }));
  }
  return evaluation_reply(evaluate_logits(ctx.data->test, [&](const torch::Tensor& x) {
    return model.forward(x.to(dev)).cpu();
  }));
}

// The private model with its own head (prototype inference, fedproto.prototype_inference, is
// not part of the exported module).
std::optional<ExportedModel> FedProtoClient::personal_model(int64_t client_id,
    const ClientState& state, const Message&) const {
  return export_private(model_of(models_, client_id), state, kPrefix);
}

AlgorithmInfo fedproto_info() {
  return {"fedproto",
          "FedProto: private heterogeneous models regularised towards count-weighted global "
          "class prototypes; only prototypes travel",
          true,
          [](const AlgorithmSetup& s) {
            common_feature_dim(s, "fedproto");
            bool proto = s.cfg.get_choice("fedproto.inference", "head", {"head", "prototype"}) ==
                         "prototype";
            s.cfg.get_double("fedproto.lambda", 1.0, 0.0, 1e6);
            return std::make_unique<ClassMeansServer>(s, kProtos, proto);
          },
          [](const AlgorithmSetup& s) { return std::make_unique<FedProtoClient>(s); }};
}

}  // namespace fedpp
