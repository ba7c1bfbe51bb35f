#include "fedpp/algorithms/fedkd.hpp"

#include "fedpp/core/error.hpp"

namespace fedpp {

namespace {
const std::string kUpdatePrefix = "update.";  // uploaded tensors: the student's update
}  // namespace


namespace {
constexpr const char* kPrefix = "model.";
constexpr const char* kAdapter = "wh.";
}  // namespace

NamedTensors svd_compress(const NamedTensors& update, double energy) {
  FEDPP_CHECK(energy > 0 && energy <= 1, "SVD energy must be in (0, 1], got " +
                                             std::to_string(energy));
  NamedTensors out;
  for (const auto& [name, t] : update) {
    if (t.dim() < 2 || t.size(0) < 2 || !t.is_floating_point()) {
      out.set(name, t);
      continue;
    }
    auto m = t.reshape({t.size(0), -1}).to(torch::kFloat);
    auto [u, s, vh] = torch::linalg_svd(m, /*full_matrices=*/false);
    auto e = s.pow(2).cumsum(0);
    double total = e[-1].item<double>();
    // Fewest singular values whose squared sum reaches energy * total.
    int64_t r = total > 0 ? e.lt(energy * total).sum().item<int64_t>() + 1 : 1;
    r = std::min(r, s.size(0));
    if (r * (m.size(0) + m.size(1)) >= m.numel()) {
      out.set(name, t);
      continue;
    }
    out.set(name + ".svd_us", (u.slice(1, 0, r) * s.slice(0, 0, r).unsqueeze(0)).contiguous());
    out.set(name + ".svd_v", vh.slice(0, 0, r).contiguous());
  }
  return out;
}

NamedTensors svd_recover(const NamedTensors& compressed, const NamedTensors& like) {
  NamedTensors out;
  for (const auto& [name, ref] : like) {
    torch::Tensor t;
    if (compressed.contains(name)) {
      t = compressed.at(name);
    } else {
      FEDPP_CHECK(compressed.contains(name + ".svd_us") && compressed.contains(name + ".svd_v"),
                  "update lacks tensor '" + name + "' (dense or as .svd_us/.svd_v factors)");
      const auto& us = compressed.at(name + ".svd_us");
      const auto& v = compressed.at(name + ".svd_v");
      FEDPP_CHECK(us.dim() == 2 && v.dim() == 2 && us.size(1) == v.size(0) &&
                      us.size(0) * v.size(1) == ref.numel(),
                  "SVD factors of '" + name + "' have shapes " + c10::str(us.sizes()) + " and " +
                      c10::str(v.sizes()) + ", which do not make " + c10::str(ref.sizes()));
      t = us.matmul(v).reshape(ref.sizes());
    }
    FEDPP_CHECK(t.sizes() == ref.sizes(), "update tensor '" + name + "' has shape " +
                                              c10::str(t.sizes()) + ", expected " +
                                              c10::str(ref.sizes()));
    out.set(name, t.to(ref.scalar_type()).contiguous());
  }
  return out;
}

FedKdServer::FedKdServer(const AlgorithmSetup& setup)
    : SharedModelServer(setup, "fedkd.shared_model"),
      rounds_(setup.cfg.get_int("rounds", 10, 1)),
      energy_start_(setup.cfg.get_double("fedkd.energy_start", 0.95, 1e-6, 1.0)),
      energy_end_(setup.cfg.get_double("fedkd.energy_end", 0.98, 1e-6, 1.0)) {
  setup.cfg.get_bool("fedkd.svd", true);
}

double FedKdServer::energy(int64_t round) const {
  double f = static_cast<double>(round - 1) / static_cast<double>(rounds_);
  return energy_start_ + std::clamp(f, 0.0, 1.0) * (energy_end_ - energy_start_);
}

Message FedKdServer::configure_fit(int64_t round, int64_t client_id) {
  auto m = SharedModelServer::configure_fit(round, client_id);
  m.metrics["svd_energy"] = energy(round);
  return m;
}

void FedKdServer::aggregate(int64_t, const std::vector<Reply>& replies) {
  if (replies.empty()) return;
  std::vector<Reply> updates;
  for (const auto& r : replies) {
    Reply u = r;
    try {
      u.message.tensors = svd_recover(r.message.tensors.with_prefix(kUpdatePrefix, true), global_);
    } catch (const Error& e) {
      throw Error("client " + std::to_string(r.client_id) + ": " + e.what());
    }
    updates.push_back(std::move(u));
  }
  auto avg = weighted_average(updates, global_);
  NamedTensors next;
  for (const auto& [name, g] : global_)
    next.set(name, g.is_floating_point() ? (g + avg.at(name)).contiguous() : g);
  global_ = next;
}

FedKdClient::FedKdClient(const AlgorithmSetup& setup)
    : train_(TrainOptions::from_config(setup.cfg)),
      svd_(setup.cfg.get_bool("fedkd.svd", true)),
      run_seed_(setup.seed),
      models_(client_models(setup.cfg, setup.num_clients)),
      cache_(setup.spec, setup.seed, setup.device) {
  student_ = make_model_seeded(
      setup.cfg.get_choice("fedkd.shared_model", "cnn5", model_names()), setup.spec,
      0);  // weights arrive with every message
  student_->to(setup.device);
}

Message FedKdClient::fit(const Message& in, ClientContext& ctx) {
  load_module_state(*student_, in.tensors);
  auto received = module_state(*student_).clone();
  Model& teacher = cache_.get(model_of(models_, ctx.client_id), ctx.client_id, *ctx.state, kPrefix);
  const auto dev = ctx.device;
  torch::nn::Linear adapter{nullptr};
  with_seeded_torch(private_init_seed(run_seed_, ctx.client_id, 1), [&] {
    adapter = torch::nn::Linear(
        torch::nn::LinearOptions(student_->feature_dim(), teacher.feature_dim()).bias(false));
  });
  adapter->to(dev);
  if (has_private(*ctx.state, kAdapter)) load_private(*adapter, *ctx.state, kAdapter);

  teacher.train();
  student_->train();
  auto params = teacher.parameters();
  for (const auto& p : student_->parameters()) params.push_back(p);
  for (const auto& p : adapter->parameters()) params.push_back(p);
  auto opt = make_sgd(params, train_);
  namespace F = torch::nn::functional;
  auto stats = train_epochs(
      ctx.data->train, train_, ctx.seed, *opt,
      [&](const torch::Tensor& x, const torch::Tensor& y, const torch::Tensor&) {
        auto xd = x.to(dev), yd = y.to(dev);
        auto ht = teacher.features(xd), hs = student_->features(xd);
        auto t = teacher.head(ht), s = student_->head(hs);
        auto ce_t = F::cross_entropy(t, yd), ce_s = F::cross_entropy(s, yd);
        auto a = 1.0 / (ce_t + ce_s).detach().clamp_min(1e-8);
        auto hidden = F::mse_loss(ht, adapter->forward(hs));
        return ce_t + ce_s + a * (kd_loss(t, s, 1.0) + kd_loss(s, t, 1.0) + 2.0 * hidden);
      });
  save_private(teacher, *ctx.state, kPrefix);
  save_private(*adapter, *ctx.state, kAdapter);

  NamedTensors update;
  for (const auto& [name, w] : module_state(*student_))
    update.set(name, w.is_floating_point() ? (w - received.at(name)).cpu().contiguous()
                                           : w.cpu().clone());
  Message out;
  // Under its own names: the wire would otherwise send a tensor named like a received weight as
  // the difference from that weight (it is already a difference).
  out.tensors = (svd_ ? svd_compress(update, in.metric_or("svd_energy", 1.0)) : update)
                    .add_prefix(kUpdatePrefix);
  out.metrics["num_samples"] = static_cast<double>(ctx.data->train.size());
  out.metrics["train_loss"] = stats.loss;
  const double adapter_macs =
      static_cast<double>(student_->feature_dim() * teacher.feature_dim());
  out.metrics["client_macs"] =
      3.0 *
      (static_cast<double>(teacher.macs_per_sample() + student_->macs_per_sample()) +
       adapter_macs) *
      static_cast<double>(stats.samples);
  out.metrics["upload_fraction"] =
      static_cast<double>(out.tensors.numel()) / static_cast<double>(update.numel());
  return out;
}

Message FedKdClient::evaluate(const Message&, ClientContext& ctx) {
  return evaluate_reply(  // the private (teacher) model
      cache_.get(model_of(models_, ctx.client_id), ctx.client_id, *ctx.state, kPrefix), ctx);
}

// The private (teacher) model: the one a FedKD client is evaluated with.
std::optional<ExportedModel> FedKdClient::personal_model(int64_t client_id,
    const ClientState& state, const Message&) const {
  return export_private(model_of(models_, client_id), state, kPrefix);
}

AlgorithmInfo fedkd_info() {
  return {"fedkd",
          "FedKD: private teacher and shared student trained by adaptive mutual and hidden-state "
          "distillation; only the SVD-compressed student update travels",
          true, [](const AlgorithmSetup& s) { return std::make_unique<FedKdServer>(s); },
          [](const AlgorithmSetup& s) { return std::make_unique<FedKdClient>(s); }};
}

}  // namespace fedpp
