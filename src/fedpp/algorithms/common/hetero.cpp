#include "fedpp/algorithms/common/hetero.hpp"

#include <algorithm>

#include "fedpp/core/error.hpp"
#include "fedpp/core/seed.hpp"
#include "fedpp/fl/training.hpp"

namespace fedpp {

std::vector<std::string> client_models(const Config& cfg, int64_t num_clients) {
  auto setting = cfg.get_choice("hetero.setting", "heterogeneous",
                                {"heterogeneous", "homogeneous"});
  std::vector<std::string> def = setting == "homogeneous"
                                     ? std::vector<std::string>{"cnn1"}
                                     : std::vector<std::string>{"cnn1", "cnn2", "cnn3", "cnn4",
                                                                "cnn5"};
  auto models = cfg.get_strings("hetero.models", def);
  FEDPP_CHECK(!models.empty(), "hetero.models is empty; list at least one zoo model name");
  const auto known = model_names();
  for (const auto& m : models)
    FEDPP_CHECK(std::find(known.begin(), known.end(), m) != known.end(),
                "hetero.models names unknown model '" + m + "'; use one of the zoo's models");
  if (setting == "homogeneous")
    for (const auto& m : models)
      FEDPP_CHECK(m == models[0], "hetero.setting = \"homogeneous\" but hetero.models lists "
                                  "different models; give one name or set hetero.setting = "
                                  "\"heterogeneous\"");
  std::vector<std::string> out;
  for (int64_t k = 0; k < num_clients; ++k)
    out.push_back(models[static_cast<size_t>(k) % models.size()]);
  return out;
}

const std::string& model_of(const std::vector<std::string>& models, int64_t client) {
  FEDPP_CHECK(client >= 0 && client < static_cast<int64_t>(models.size()),
              "client id " + std::to_string(client) + " is outside the " +
                  std::to_string(models.size()) + " clients of this run (data.num_clients)");
  return models[static_cast<size_t>(client)];
}

uint64_t private_init_seed(uint64_t run_seed, int64_t client, uint64_t salt) {
  return derive_seed(run_seed, Purpose::kInit,
                     {hash_name("private"), static_cast<uint64_t>(client), salt});
}

bool has_private(const ClientState& state, const std::string& prefix) {
  for (const auto& [name, t] : state.tensors)
    if (name.rfind(prefix, 0) == 0) return true;
  return false;
}

void save_private(const torch::nn::Module& m, ClientState& state, const std::string& prefix) {
  for (const auto& [name, t] : module_state(m)) state.tensors.set(prefix + name, t.detach().cpu().clone());
}

std::optional<ExportedModel> export_private(const std::string& name, const ClientState& state,
                                            const std::string& prefix) {
  if (!has_private(state, prefix)) return std::nullopt;
  return ExportedModel{name, state.tensors.with_prefix(prefix, /*strip=*/true), {}};
}

void load_private(torch::nn::Module& m, const ClientState& state, const std::string& prefix) {
  // Non-strict over the state (it holds other modules too), strict over the module.
  auto own = state.tensors.with_prefix(prefix, /*strip=*/true);
  for (const auto& [name, t] : module_state(m))
    FEDPP_CHECK(own.contains(name), "client state lacks '" + prefix + name +
                                        "' (was it saved by another model or method? start "
                                        "with a fresh runtime.state_dir)");
  load_module_state(m, own, /*strict=*/true);
}

std::vector<std::string> head_tensor_names(Model& m) {
  std::vector<std::string> names;
  std::vector<torch::Tensor> params;
  for (const auto& p : m.named_parameters(true)) {
    names.push_back(p.key());
    params.push_back(p.value());
  }
  auto r = torch::zeros({1, m.feature_dim()}, params.at(0).options().requires_grad(false));
  auto out = m.head(r).sum();
  auto grads = torch::autograd::grad({out}, params, /*grad_outputs=*/{}, /*retain_graph=*/false,
                                     /*create_graph=*/false, /*allow_unused=*/true);
  std::vector<std::string> head;
  for (size_t i = 0; i < params.size(); ++i)
    if (grads[i].defined()) head.push_back(names[i]);
  return head;
}

namespace {
NamedTensors split_state(Model& m, bool want_head) {
  auto head = head_tensor_names(m);
  NamedTensors out;
  for (const auto& [name, t] : module_state(m)) {
    bool is_head = std::find(head.begin(), head.end(), name) != head.end();
    if (is_head == want_head) out.set(name, t);
  }
  return out;
}
}  // namespace

NamedTensors feature_state(Model& m) { return split_state(m, false); }
NamedTensors head_state(Model& m) { return split_state(m, true); }

TrainStats train_private(Model& m, const ClientContext& ctx, const TrainOptions& opt) {
  m.train();
  auto sgd = make_sgd(m.parameters(), opt);
  const auto dev = ctx.device;
  return train_epochs(ctx.data->train, opt, ctx.seed, *sgd,
                      [&](const torch::Tensor& x, const torch::Tensor& y, const torch::Tensor&) {
                        return torch::nn::functional::cross_entropy(m.forward(x.to(dev)),
                                                                    y.to(dev));
                      });
}

Message evaluate_reply(Model& m, const ClientContext& ctx) {
  m.eval();
  auto s = evaluate_logits(ctx.data->test, [&](const torch::Tensor& x) {
    return m.forward(x.to(ctx.device)).cpu();
  });
  Message out;
  out.metrics = {{"accuracy", s.accuracy}, {"loss", s.loss},
                 {"num_samples", static_cast<double>(s.samples)}};
  return out;
}

PrivateModels::PrivateModels(ModelSpec spec, uint64_t run_seed, torch::Device device)
    : spec_(std::move(spec)), run_seed_(run_seed), device_(device) {}

Model& PrivateModels::get(const std::string& name, int64_t client, const ClientState& state,
                          const std::string& prefix, uint64_t salt) {
  auto& slot = models_[name];
  if (!slot) {
    slot = make_model_seeded(name, spec_, 0);  // weights are set below
    slot->to(device_);
  }
  if (has_private(state, prefix)) {
    load_private(*slot, state, prefix);
  } else {
    auto fresh = make_model_seeded(name, spec_, private_init_seed(run_seed_, client, salt));
    load_module_state(*slot, module_state(*fresh));
  }
  return *slot;
}

}  // namespace fedpp
