#include "fedpp/algorithms/fedmoe.hpp"

#include <set>

#include "fedpp/core/error.hpp"
#include "fedpp/core/seed.hpp"

namespace fedpp {

SwitchNormImpl::SwitchNormImpl(int64_t channels, double momentum, double eps)
    : c_(channels), momentum_(momentum), eps_(eps) {
  weight_ = register_parameter("weight", torch::ones({c_}));
  bias_ = register_parameter("bias", torch::zeros({c_}));
  mean_weight_ = register_parameter("mean_weight", torch::ones({3}));  // IN, LN, BN
  var_weight_ = register_parameter("var_weight", torch::ones({3}));
  running_mean_ = register_buffer("running_mean", torch::zeros({c_}));
  running_var_ = register_buffer("running_var", torch::ones({c_}));
}

torch::Tensor SwitchNormImpl::forward(torch::Tensor x) {
  FEDPP_CHECK(x.dim() >= 2 && x.size(1) == c_,
              "switch normalization expects [B, " + std::to_string(c_) + ", ...], got " +
                  c10::str(x.sizes()));
  const auto shape = x.sizes().vec();
  auto v = x.reshape({x.size(0), c_, -1});  // [B, C, P]
  auto mean_in = v.mean(2, true);
  auto var_in = v.var(2, /*unbiased=*/false, true);
  // Layer statistics from the instance ones (equal pixels per channel).
  auto mean_ln = mean_in.mean(1, true);
  auto var_ln = (var_in + mean_in * mean_in).mean(1, true) - mean_ln * mean_ln;
  torch::Tensor mean_bn, var_bn;
  if (is_training()) {
    mean_bn = mean_in.mean(0, true);
    var_bn = (var_in + mean_in * mean_in).mean(0, true) - mean_bn * mean_bn;
    torch::NoGradGuard no_grad;
    running_mean_.mul_(1 - momentum_).add_(mean_bn.flatten().detach(), momentum_);
    running_var_.mul_(1 - momentum_).add_(var_bn.flatten().detach(), momentum_);
  } else {
    mean_bn = running_mean_.view({1, c_, 1});
    var_bn = running_var_.view({1, c_, 1});
  }
  auto mw = torch::softmax(mean_weight_, 0), vw = torch::softmax(var_weight_, 0);
  auto mean = mw[0] * mean_in + mw[1] * mean_ln + mw[2] * mean_bn;
  auto var = vw[0] * var_in + vw[1] * var_ln + vw[2] * var_bn;
  v = (v - mean) / (var + eps_).sqrt();
  v = v * weight_.view({1, c_, 1}) + bias_.view({1, c_, 1});
  return v.reshape(shape);
}

namespace {
int64_t numel_of(const std::vector<int64_t>& shape) {
  int64_t d = 1;
  for (auto s : shape) d *= s;
  return d;
}
}  // namespace

MoeGateImpl::MoeGateImpl(const std::vector<int64_t>& input_shape, int64_t hidden,
                         const std::string& norm)
    : d_(numel_of(input_shape)), m_(hidden), norm_kind_(norm) {
  if (norm == "layernorm")
    ln_ = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({d_})));
  else if (norm == "batchnorm")
    bn_ = register_module("norm", torch::nn::BatchNorm1d(d_));
  else if (norm == "switchnorm")
    sn_ = register_module("norm", SwitchNorm(input_shape.empty() ? 1 : input_shape[0]));
  fc1_ = register_module("fc1", torch::nn::Linear(d_, m_));
  fc2_ = register_module("fc2", torch::nn::Linear(m_, 2));
}

void MoeGateImpl::init_towards_local(double p) {
  FEDPP_CHECK(p > 0.0 && p < 1.0, "fedmoe.gate_init_local must be in (0, 1), or 0 for off");
  torch::NoGradGuard no_grad;
  // softmax([b_g, b_l])[1] = p  <=>  b_l - b_g = log(p / (1 - p)); the weights are zeroed so
  // that every sample starts at exactly p (the hidden layer still learns through them).
  fc2_->weight.zero_();
  fc2_->bias.copy_(torch::tensor({0.0f, static_cast<float>(std::log(p / (1.0 - p)))}));
}

torch::Tensor MoeGateImpl::forward(torch::Tensor x) {
  if (sn_) x = sn_->forward(x.dim() >= 2 ? x : x.unsqueeze(1));
  x = x.flatten(1);
  if (ln_) x = ln_->forward(x);
  if (bn_) x = bn_->forward(x);
  return torch::softmax(fc2_->forward(torch::sigmoid(fc1_->forward(x))), 1);
}

int64_t MoeGateImpl::macs_per_sample() const {
  return d_ * m_ + m_ * 2 + (ln_ || bn_ || sn_ ? d_ : 0);
}

torch::Tensor MoeForward::weights(const torch::Tensor& x) const {
  const int64_t b = x.size(0);
  auto constant = [&](double ag) {
    return torch::tensor({ag, 1.0 - ag}, x.options()).expand({b, 2});
  };
  switch (mix) {
    case MoeMix::kGate: return gate->forward(x);
    case MoeMix::kFixed: return constant(0.5);
    case MoeMix::kLocalOnly: return constant(0.0);
    case MoeMix::kGlobalOnly: return constant(1.0);
  }
  return {};
}

torch::Tensor MoeForward::operator()(const torch::Tensor& x, torch::Tensor* w_out) const {
  auto w = weights(x);
  if (w_out) *w_out = w;
  torch::Tensor r;
  // An expert with weight 0 by construction is not run (and so gets no gradient).
  if (mix != MoeMix::kLocalOnly) r = w.select(1, 0).unsqueeze(1) * global->features(x);
  if (mix != MoeMix::kGlobalOnly) {
    auto l = w.select(1, 1).unsqueeze(1) * local->features(x);
    r = r.defined() ? r + l : l;
  }
  return local->head(r);
}

namespace {

struct GlobalExpertSpec {
  std::string name;
  ModelPtr model;
};

// Reads fedmoe.global_expert, builds it from `seed` and checks that its representation has the
// size of every client model's.
GlobalExpertSpec make_global_expert(const AlgorithmSetup& s, const std::vector<std::string>& models,
                               uint64_t seed) {
  GlobalExpertSpec g;
  g.name = s.cfg.get_choice("fedmoe.global_expert", "cnn5", model_names());
  g.model = make_model_seeded(g.name, s.spec, seed);
  for (const auto& name : std::set<std::string>(models.begin(), models.end())) {
    auto m = make_model_seeded(name, s.spec, 0);
    FEDPP_CHECK(m->feature_dim() == g.model->feature_dim(),
                "fedmoe.global_expert = \"" + g.name + "\" emits " +
                    std::to_string(g.model->feature_dim()) + "-d representations but client "
                    "model '" + name + "' emits " + std::to_string(m->feature_dim()) +
                    "-d; choose a global expert (or hetero.models) with equal feature_dim");
  }
  return g;
}

struct ClientOptions {
  MoeMix mix = MoeMix::kGate;
  double gate_lr = 0.0;
  double gate_init_local = 0.0;
  int64_t gate_hidden = 128;
  std::string gate_norm;
};

ClientOptions read_client_options(const Config& cfg) {
  ClientOptions o;
  auto mix = cfg.get_choice("fedmoe.mix", "gate", {"gate", "fixed", "local_only", "global_only"});
  o.mix = mix == "gate"         ? MoeMix::kGate
          : mix == "fixed"      ? MoeMix::kFixed
          : mix == "local_only" ? MoeMix::kLocalOnly
                                : MoeMix::kGlobalOnly;
  o.gate_lr = cfg.get_double("fedmoe.gate_lr", 0.0, 0.0, 1e3);
  o.gate_init_local = cfg.get_double("fedmoe.gate_init_local", 0.0, 0.0, 0.999999);
  o.gate_hidden = cfg.get_int("fedmoe.gate_hidden", 128, 1, 1 << 20);
  o.gate_norm = cfg.get_choice("fedmoe.gate_norm", "layernorm",
                               {"layernorm", "batchnorm", "switchnorm", "none"});
  return o;
}

void check_expert(const NamedTensors& got, const std::vector<std::string>& want,
                  const std::string& what) {
  FEDPP_CHECK(got.names() == want, what + " does not hold the global expert's tensors (" +
                                       std::to_string(got.size()) + " tensors, expected " +
                                       std::to_string(want.size()) +
                                       "); server and client must use the same "
                                       "fedmoe.global_expert");
}

}  // namespace

namespace {
NamedTensors initial_expert(const AlgorithmSetup& setup) {
  auto models = client_models(setup.cfg, setup.num_clients);
  auto g = make_global_expert(setup, models, derive_seed(setup.seed, Purpose::kInit, {0}));
  return feature_state(*g.model).clone();
}
}  // namespace

FedMoeServer::FedMoeServer(const AlgorithmSetup& setup)
    : AveragingServer(initial_expert(setup), "the global expert (fedmoe.global_expert)") {
  read_client_options(setup.cfg);  // validated here too, so a server-only process accepts them
}

std::optional<Message> FedMoeServer::configure_evaluate(int64_t round, int64_t client_id) {
  return configure_fit(round, client_id);
}

FedMoeClient::FedMoeClient(const AlgorithmSetup& setup)
    : setup_(setup),
      train_(TrainOptions::from_config(setup.cfg)),
      models_(client_models(setup.cfg, setup.num_clients)),
      locals_(setup.spec, setup.seed, setup.device) {
  auto o = read_client_options(setup.cfg);
  mix_ = o.mix;
  gate_lr_ = o.gate_lr;
  gate_init_local_ = o.gate_init_local;
  gate_hidden_ = o.gate_hidden;
  gate_norm_ = o.gate_norm;
  global_ = make_global_expert(setup, models_, 0).model;  // weights arrive with every message
  global_->to(setup.device);
  global_names_ = feature_state(*global_).names();
  gate_ = MoeGate(setup.spec.input_shape, gate_hidden_, gate_norm_);
  gate_->to(setup.device);
}

MoeForward FedMoeClient::load(const Message& in, const ClientContext& ctx) {
  check_expert(in.tensors, global_names_, "the server's message");
  load_module_state(*global_, in.tensors, /*strict=*/false);
  const ClientState& state = *ctx.state;
  MoeForward moe;
  moe.global = global_.get();
  moe.local = &locals_.get(model_of(models_, ctx.client_id), ctx.client_id, state, "local.");
  if (has_private(state, "gate.")) {
    load_private(*gate_, state, "gate.");
  } else {
    MoeGate fresh{nullptr};
    with_seeded_torch(private_init_seed(setup_.seed, ctx.client_id, 1), [&] {
      fresh = MoeGate(setup_.spec.input_shape, gate_hidden_, gate_norm_);
    });
    if (gate_init_local_ > 0) fresh->init_towards_local(gate_init_local_);
    load_module_state(*gate_, module_state(*fresh));
  }
  moe.gate = gate_.get();
  moe.mix = mix_;
  return moe;
}

FedMoeClient::Eval FedMoeClient::evaluate_mixture(const MoeForward& moe,
                                                  const Dataset& test) const {
  moe.global->eval();
  moe.local->eval();
  moe.gate->eval();
  const auto dev = setup_.device;
  double gate_sum = 0.0;
  Eval e;
  e.stats = evaluate_logits(test, [&](const torch::Tensor& x) {
    torch::Tensor w;
    auto logits = moe(x.to(dev), &w);
    gate_sum += w.select(1, 0).sum().item<double>();
    return logits.cpu();
  });
  e.gate_global = e.stats.samples > 0 ? gate_sum / static_cast<double>(e.stats.samples) : 0.0;
  return e;
}

Message FedMoeClient::fit(const Message& in, ClientContext& ctx) {
  auto moe = load(in, ctx);
  moe.global->train();
  moe.local->train();
  moe.gate->train();
  // Unused parts (G's head, an expert an ablation switches off) get no gradient; SGD skips them.
  std::vector<torch::Tensor> params = moe.global->parameters();
  for (const auto& p : moe.local->parameters()) params.push_back(p);
  auto opt = make_sgd(params, train_);
  if (mix_ == MoeMix::kGate) {
    auto gate_opts = std::make_unique<torch::optim::SGDOptions>(
        torch::optim::SGDOptions(gate_lr_ > 0 ? gate_lr_ : train_.lr)
            .momentum(train_.momentum)
            .weight_decay(train_.weight_decay));
    opt->add_param_group(torch::optim::OptimizerParamGroup(moe.gate->parameters(),
                                                           std::move(gate_opts)));
  }
  const auto dev = ctx.device;
  auto stats = train_epochs(ctx.data->train, train_, ctx.seed, *opt,
                            [&](const torch::Tensor& x, const torch::Tensor& y,
                                const torch::Tensor&) {
                              return torch::nn::functional::cross_entropy(moe(x.to(dev)),
                                                                          y.to(dev));
                            });
  save_private(*moe.local, *ctx.state, "local.");
  save_private(*moe.gate, *ctx.state, "gate.");
  auto after = evaluate_mixture(moe, ctx.data->test);

  Message out;
  out.tensors = feature_state(*moe.global).clone();
  const double g = static_cast<double>(moe.global->feature_macs_per_sample());
  const double l = static_cast<double>(moe.local->macs_per_sample());
  const double l_head = l - static_cast<double>(moe.local->feature_macs_per_sample());
  const double h = static_cast<double>(moe.gate->macs_per_sample());
  const double fwd = mix_ == MoeMix::kGate        ? g + l + h
                     : mix_ == MoeMix::kFixed     ? g + l
                     : mix_ == MoeMix::kLocalOnly ? l
                                                  : g + l_head;
  out.metrics["num_samples"] = static_cast<double>(ctx.data->train.size());
  out.metrics["train_loss"] = stats.loss;
  out.metrics["client_macs"] = 3.0 * fwd * static_cast<double>(stats.samples);
  out.metrics["personal_accuracy_after_fit"] = after.stats.accuracy;
  out.metrics["gate_global_weight"] = after.gate_global;
  return out;
}

Message FedMoeClient::evaluate(const Message& in, ClientContext& ctx) {
  auto moe = load(in, ctx);
  auto e = evaluate_mixture(moe, ctx.data->test);
  Message out;
  out.metrics = {{"accuracy", e.stats.accuracy},
                 {"loss", e.stats.loss},
                 {"num_samples", static_cast<double>(e.stats.samples)},
                 {"gate_global_weight", e.gate_global}};
  return out;
}

std::optional<ExportedModel> FedMoeClient::personal_model(int64_t client_id,
                                                          const ClientState& state,
                                                          const Message& shared) const {
  if (!has_private(state, "local.") || shared.tensors.empty()) return std::nullopt;
  check_expert(shared.tensors, global_names_, "the server's evaluation message");
  ExportedModel out;
  out.model = "fedmoe";
  out.tensors = shared.tensors.add_prefix("global.");
  for (const char* prefix : {"local.", "gate."})
    for (const auto& [name, t] : state.tensors.with_prefix(prefix, /*strip=*/false))
      out.tensors.set(name, t);
  static const char* kMix[] = {"gate", "fixed", "local_only", "global_only"};
  out.parts = {{"global_expert", global_->model_name()},
               {"local", model_of(models_, client_id)},
               {"mix", kMix[static_cast<int>(mix_)]},
               {"gate_norm", gate_norm_},
               {"gate_hidden", std::to_string(gate_hidden_)}};
  return out;
}

AlgorithmInfo fedmoe_info() {
  return {"fedmoe",
          "FedMoE: private heterogeneous expert + shared global expert mixed by a per-sample gate",
          true, [](const AlgorithmSetup& s) { return std::make_unique<FedMoeServer>(s); },
          [](const AlgorithmSetup& s) { return std::make_unique<FedMoeClient>(s); }};
}

}  // namespace fedpp
