#include "fedpp/algorithms/fedgkt.hpp"

#include "fedpp/algorithms/common/hetero.hpp"  // evaluate_reply, export_private

#include <algorithm>
#include <cmath>
#include <limits>

#include "fedpp/core/error.hpp"
#include "fedpp/core/seed.hpp"

namespace fedpp {

namespace F = torch::nn::functional;

namespace {

uint64_t u(int64_t v) { return static_cast<uint64_t>(v); }
std::string str(int64_t v) { return std::to_string(v); }

std::string param_key(const torch::Tensor& p) {
  return c10::guts::to_string(p.unsafeGetTensorImpl());
}

// Rows [start, end) of `order` as an index tensor.
torch::Tensor rows(const std::vector<int64_t>& order, int64_t start, int64_t end) {
  return torch::tensor(std::vector<int64_t>(order.begin() + start, order.begin() + end),
                       torch::kLong);
}

const torch::Tensor& need(const Message& m, const std::string& name, int64_t client) {
  FEDPP_CHECK(m.tensors.contains(name),
              "FedGKT reply of client " + str(client) + " has no tensor '" + name + "'");
  return m.tensors.at(name);
}

}  // namespace

PlateauScheduler::PlateauScheduler(double factor, int64_t patience, double threshold,
                                   double min_lr)
    : factor_(factor), threshold_(threshold), min_lr_(min_lr), patience_(patience),
      best_(std::numeric_limits<double>::infinity()) {}

bool PlateauScheduler::step(double loss, torch::optim::Optimizer& opt) {
  if (loss < best_ * (1.0 - threshold_)) {
    best_ = loss;
    bad_ = 0;
    return false;
  }
  if (++bad_ <= patience_) return false;
  bad_ = 0;
  bool reduced = false;
  for (auto& g : opt.param_groups()) {
    double lr = g.options().get_lr();
    double next = std::max(lr * factor_, min_lr_);
    if (next < lr) {
      g.options().set_lr(next);
      reduced = true;
    }
  }
  return reduced;
}

NamedTensors adam_state(torch::optim::Adam& opt, const torch::nn::Module& m) {
  NamedTensors out;
  for (const auto& item : m.named_parameters()) {
    auto it = opt.state().find(param_key(item.value()));
    if (it == opt.state().end()) continue;
    auto& s = static_cast<torch::optim::AdamParamState&>(*it->second);
    out.set(item.key() + ".exp_avg", s.exp_avg().detach().clone());
    out.set(item.key() + ".exp_avg_sq", s.exp_avg_sq().detach().clone());
    out.set(item.key() + ".step", torch::tensor(s.step(), torch::kLong));
  }
  return out;
}

void load_adam_state(torch::optim::Adam& opt, const torch::nn::Module& m, const NamedTensors& s) {
  for (const auto& item : m.named_parameters()) {
    const std::string& n = item.key();
    if (!s.contains(n + ".exp_avg")) continue;
    FEDPP_CHECK(s.at(n + ".exp_avg").sizes() == item.value().sizes(),
                "saved optimiser state of '" + n + "' does not match the model");
    auto st = std::make_unique<torch::optim::AdamParamState>();
    st->step(s.at(n + ".step").item<int64_t>());
    st->exp_avg(s.at(n + ".exp_avg").clone().to(item.value().device()));
    st->exp_avg_sq(s.at(n + ".exp_avg_sq").clone().to(item.value().device()));
    opt.state()[param_key(item.value())] = std::move(st);
  }
}

GktOptions GktOptions::from_config(const Config& cfg) {
  GktOptions o;
  o.server_model = cfg.get_choice("fedgkt.server_model", o.server_model,
                                  {"resnet56_server", "resnet110_server"});
  o.client_epochs = cfg.get_int("fedgkt.client_epochs", o.client_epochs, 1, 10000);
  const bool iid = cfg.get_string("data.partition", "iid") == "iid";
  o.server_epochs = cfg.get_int("fedgkt.server_epochs", iid ? 20 : 10, 1, 10000);
  o.batch_size = cfg.get_int("fedgkt.batch_size", o.batch_size, 1, 1 << 20);
  o.client_lr = cfg.get_double("fedgkt.client_lr", o.client_lr, 0.0, 10.0);
  o.server_lr = cfg.get_double("fedgkt.server_lr", o.server_lr, 0.0, 10.0);
  o.weight_decay = cfg.get_double("fedgkt.weight_decay", o.weight_decay, 0.0, 1.0);
  o.temperature = cfg.get_double("fedgkt.temperature", o.temperature, 1e-3, 1e3);
  o.alpha = cfg.get_double("fedgkt.alpha", o.alpha, 0.0, 1e3);
  o.server_kd = cfg.get_bool("fedgkt.server_kd", o.server_kd);
  o.server_lr_factor = cfg.get_double("fedgkt.server_lr_factor", o.server_lr_factor, 1e-6, 1.0);
  o.server_lr_patience = cfg.get_int("fedgkt.server_lr_patience", o.server_lr_patience, 0);
  o.scheduler_step = cfg.get_choice("fedgkt.scheduler_step", o.scheduler_step, {"round", "epoch"});
  o.common_init = cfg.get_bool("fedgkt.common_init", o.common_init);
  o.cache_dtype = cfg.get_choice("fedgkt.cache_dtype", o.cache_dtype, {"float16", "float32"});
  o.cache_max_bytes = cfg.get_int("fedgkt.cache_max_bytes", o.cache_max_bytes, 0);
  o.cache_dir = cfg.get_string("fedgkt.cache_dir", o.cache_dir);
  o.send_test_features = cfg.get_bool("fedgkt.send_test_features", o.send_test_features);
  return o;
}

// ---- server ----------------------------------------------------------------------------------

FedGktServer::FedGktServer(const AlgorithmSetup& setup)
    : setup_(setup),
      opt_(GktOptions::from_config(setup.cfg)),
      plateau_(opt_.server_lr_factor, opt_.server_lr_patience) {
  auto client = std::dynamic_pointer_cast<ResNet8>(make_model_seeded("resnet8", setup.spec, 0));
  FEDPP_CHECK(client, "model 'resnet8' is not a ResNet8");
  map_shape_ = client->feature_map_shape();
  model_ = make_model_seeded(opt_.server_model, ModelSpec{map_shape_, setup.spec.num_classes},
                             derive_seed(setup.seed, Purpose::kInit, {hash_name("fedgkt_server")}));
  model_->to(setup.device);
  eval_client_ = std::dynamic_pointer_cast<ResNet8>(make_model_seeded("resnet8", setup.spec, 0));
  eval_client_->to(setup.device);
  adam_ = std::make_unique<torch::optim::Adam>(
      model_->parameters(),
      torch::optim::AdamOptions(opt_.server_lr).weight_decay(opt_.weight_decay));
  cache_ = std::make_unique<FeatureCache>(
      opt_.cache_dtype == "float16" ? torch::kHalf : torch::kFloat, opt_.cache_max_bytes,
      opt_.cache_dir);
}

Message FedGktServer::configure_fit(int64_t, int64_t client_id) {
  Message m;
  auto it = logits_.find(client_id);
  if (it != logits_.end()) {
    m.tensors.set("server_logits", it->second.second);
    m.tensors.set("server_idx", it->second.first);
  }
  return m;
}

void FedGktServer::aggregate(int64_t round, const std::vector<Reply>& replies) {
  const int64_t classes = setup_.spec.num_classes;
  // Every reply is checked before any enters the cache, so a bad one changes nothing.
  std::vector<std::pair<int64_t, CacheEntry>> entries;
  std::vector<std::pair<int64_t, NamedTensors>> eval_models;
  auto labels_ok = [&](const torch::Tensor& y) {
    return y.numel() == 0 || (y.min().item<int64_t>() >= 0 && y.max().item<int64_t>() < classes);
  };
  for (const auto& r : replies) {
    const auto& m = r.message;
    const int64_t k = r.client_id;
    CacheEntry e;
    e.features = need(m, "features", k);
    e.client_logits = need(m, "client_logits", k);
    e.labels = need(m, "labels", k);
    e.idx = need(m, "idx", k);
    const int64_t n = e.labels.numel();
    std::vector<int64_t> fshape = {n};
    fshape.insert(fshape.end(), map_shape_.begin(), map_shape_.end());
    FEDPP_CHECK(e.features.sizes() == c10::IntArrayRef(fshape) &&
                    e.client_logits.sizes() == c10::IntArrayRef({n, classes}) &&
                    e.idx.sizes() == c10::IntArrayRef({n}) && e.labels.dim() == 1,
                "FedGKT reply of client " + str(k) + " has inconsistent shapes: features " +
                    c10::str(e.features.sizes()) + ", client_logits " +
                    c10::str(e.client_logits.sizes()) + ", labels " +
                    c10::str(e.labels.sizes()) + ", idx " + c10::str(e.idx.sizes()));
    if (m.tensors.contains("test_features")) {
      e.test_features = m.tensors.at("test_features");
      e.test_labels = need(m, "test_labels", k);
      FEDPP_CHECK(e.test_features.dim() == 4 &&
                      e.test_features.size(0) == e.test_labels.numel(),
                  "FedGKT reply of client " + str(k) + " has test features of shape " +
                      c10::str(e.test_features.sizes()) + " for " +
                      str(e.test_labels.numel()) + " labels");
    }
    FEDPP_CHECK(labels_ok(e.labels) && (!e.test_labels.defined() || labels_ok(e.test_labels)),
                "FedGKT reply of client " + str(k) + " has labels outside [0, " + str(classes) +
                    ")");
    NamedTensors eval_model = m.tensors.with_prefix("eval.", true);
    if (!eval_model.empty()) {
      const NamedTensors want = module_state(*eval_client_);
      FEDPP_CHECK(eval_model.names() == want.names(),
                  "FedGKT reply of client " + str(k) + ": its resnet8 for evaluation has " +
                      std::to_string(eval_model.size()) + " tensors, not resnet8's " +
                      std::to_string(want.size()));
      for (const auto& [name, t] : want)
        FEDPP_CHECK(eval_model.at(name).sizes() == t.sizes(),
                    "FedGKT reply of client " + str(k) + ": its resnet8 for evaluation has '" +
                        name + "' of another shape");
    }
    entries.emplace_back(k, std::move(e));
    if (!eval_model.empty()) eval_models.emplace_back(k, eval_model.clone());
  }
  for (auto& [k, e] : entries) cache_->put(k, std::move(e));
  for (auto& [k, m] : eval_models) client_models_[k] = std::move(m);
  if (replies.empty() || cache_->size() == 0) return;
  train_server(round);
  compute_logits();
}

void FedGktServer::train_server(int64_t round) {
  model_->train();
  const auto dev = setup_.device;
  const auto clients = cache_->clients();
  const auto fwd_macs = static_cast<double>(model_->macs_per_sample());
  double macs = 0.0;
  for (int64_t e = 0; e < opt_.server_epochs; ++e) {
    const uint64_t es = derive_seed(setup_.seed, Purpose::kShuffle,
                                    {hash_name("fedgkt_server"), u(round), u(e)});
    double sum = 0.0;
    int64_t seen = 0;
    for (int64_t ci : shuffled_order(static_cast<int64_t>(clients.size()), es)) {
      const int64_t k = clients[ci];
      const CacheEntry en = cache_->get(k);
      const int64_t n = en.labels.numel();
      const auto order = shuffled_order(n, derive_seed(es, {u(k)}));
      for (int64_t start = 0; start < n; start += opt_.batch_size) {
        const int64_t end = std::min(n, start + opt_.batch_size);
        auto bi = rows(order, start, end);
        auto x = en.features.index_select(0, bi).to(torch::kFloat).to(dev);
        auto y = en.labels.index_select(0, bi).to(dev);
        auto z_s = model_->forward(x);
        auto loss = F::cross_entropy(z_s, y);
        if (opt_.server_kd)
          loss = kd_loss(z_s, en.client_logits.index_select(0, bi).to(dev), opt_.temperature) +
                 opt_.alpha * loss;
        const double lv = loss.item<double>();
        FEDPP_CHECK(std::isfinite(lv), "FedGKT server training loss became non-finite (" +
                                           std::to_string(lv) + "); lower fedgkt.server_lr");
        adam_->zero_grad();
        loss.backward();
        adam_->step();
        sum += lv * static_cast<double>(end - start);
        seen += end - start;
      }
    }
    macs += 3.0 * fwd_macs * static_cast<double>(seen);
    last_train_loss_ = seen ? sum / static_cast<double>(seen) : 0.0;
    if (opt_.scheduler_step == "epoch") plateau_.step(last_train_loss_, *adam_);
  }
  if (opt_.scheduler_step == "round") plateau_.step(last_train_loss_, *adam_);
  last_macs_ = macs;
}

void FedGktServer::compute_logits() {
  torch::NoGradGuard no_grad;
  model_->eval();
  logits_.clear();
  double rows_done = 0;
  for (int64_t k : cache_->clients()) {
    const CacheEntry en = cache_->get(k);
    const int64_t n = en.labels.numel();
    std::vector<torch::Tensor> parts;
    for (int64_t start = 0; start < n; start += opt_.batch_size) {
      auto x = en.features.slice(0, start, std::min(n, start + opt_.batch_size));
      parts.push_back(model_->forward(x.to(torch::kFloat).to(setup_.device)).cpu());
    }
    auto z = parts.empty() ? torch::zeros({0, setup_.spec.num_classes}) : torch::cat(parts);
    logits_[k] = {en.idx.clone(), z.contiguous()};
    rows_done += static_cast<double>(n);
  }
  last_macs_ += static_cast<double>(model_->macs_per_sample()) * rows_done;
}

std::map<std::string, double> FedGktServer::evaluate(int64_t, const Dataset& test) {
  std::map<std::string, double> out = {
      {"server_train_loss", last_train_loss_},
      {"server_lr", adam_->param_groups().at(0).options().get_lr()},
      {"server_macs", last_macs_},
      {"cache_bytes_memory", static_cast<double>(cache_->bytes_in_memory())},
      {"cache_bytes_disk", static_cast<double>(cache_->bytes_on_disk())}};
  torch::NoGradGuard no_grad;
  model_->eval();
  eval_client_->eval();
  const auto dev = setup_.device;
  // (a) The global test set through every client's extractor + the server model, and through
  // every client's resnet8 alone.
  if (test.size() > 0 && !client_models_.empty()) {
    double acc = 0, loss = 0, lo = 1e300, cacc = 0, closs = 0, clo = 1e300;
    for (const auto& [k, weights] : client_models_) {
      load_module_state(*eval_client_, weights);
      auto s = evaluate_logits(test, [&](const torch::Tensor& x) {
        return model_->forward(eval_client_->feature_map(x.to(dev))).cpu();
      }, opt_.batch_size);
      auto c = evaluate_logits(test, [&](const torch::Tensor& x) {
        return eval_client_->forward(x.to(dev)).cpu();
      }, opt_.batch_size);
      acc += s.accuracy, loss += s.loss, lo = std::min(lo, s.accuracy);
      cacc += c.accuracy, closs += c.loss, clo = std::min(clo, c.accuracy);
    }
    const double n = static_cast<double>(client_models_.size());
    out["accuracy"] = acc / n;
    out["loss"] = loss / n;
    out["accuracy_min"] = lo;
    out["client_accuracy"] = cacc / n;
    out["client_loss"] = closs / n;
    out["client_accuracy_min"] = clo;
  }
  // (b) Each client's own test split, from the feature maps it uploaded (personalised).
  double sum_acc = 0, lo = 1e300;
  int64_t clients = 0;
  for (int64_t k : cache_->clients()) {
    const CacheEntry en = cache_->get(k);
    if (!en.test_labels.defined() || en.test_labels.numel() == 0) continue;
    Dataset d;
    d.x = en.test_features;
    d.y = en.test_labels;
    auto s = evaluate_logits(d, [&](const torch::Tensor& x) {
      return model_->forward(x.to(torch::kFloat).to(dev)).cpu();
    }, opt_.batch_size);
    sum_acc += s.accuracy;
    lo = std::min(lo, s.accuracy);
    ++clients;
  }
  if (clients > 0) {
    out["personal_server_accuracy"] = sum_acc / static_cast<double>(clients);
    out["personal_server_accuracy_min"] = lo;
  }
  return out;
}

std::optional<Message> FedGktServer::configure_evaluate(int64_t, int64_t) { return Message{}; }

std::optional<ExportedModel> FedGktServer::global_model() const {
  return ExportedModel{opt_.server_model, module_state(*model_).clone(), {}};
}

Message FedGktServer::save_state() const {
  Message m;
  m.tensors = module_state(*model_).clone().add_prefix("model.");
  for (const auto& [n, t] : adam_state(*adam_, *model_)) m.tensors.set("adam." + n, t);
  for (const auto& [k, p] : logits_) {
    m.tensors.set("logits_idx." + str(k), p.first);
    m.tensors.set("logits." + str(k), p.second);
  }
  for (const auto& [k, w] : client_models_)
    for (const auto& [n, t] : w) m.tensors.set("client_model." + str(k) + "." + n, t);
  m.metrics["server_lr"] = adam_->param_groups().at(0).options().get_lr();
  m.metrics["plateau_best"] = plateau_.best();
  m.metrics["plateau_bad_epochs"] = static_cast<double>(plateau_.bad_epochs());
  return m;
}

void FedGktServer::load_state(const Message& state) {
  auto weights = state.tensors.with_prefix("model.", true);
  for (const auto& [name, t] : module_state(*model_))
    FEDPP_CHECK(weights.contains(name) && weights.at(name).sizes() == t.sizes(),
                "checkpoint does not match server model '" + opt_.server_model + "' (tensor '" +
                    name + "'): check fedgkt.server_model");
  load_module_state(*model_, weights);
  load_adam_state(*adam_, *model_, state.tensors.with_prefix("adam.", true));
  for (auto& g : adam_->param_groups()) g.options().set_lr(state.metric("server_lr"));
  plateau_.restore(state.metric("plateau_best"),
                   static_cast<int64_t>(state.metric("plateau_bad_epochs")));
  logits_.clear();
  for (const auto& [name, t] : state.tensors.with_prefix("logits_idx.", true)) {
    const int64_t k = std::stoll(name);
    logits_[k] = {t.clone(), state.tensors.at("logits." + name).clone()};
  }
  client_models_.clear();
  for (const auto& [name, t] : state.tensors.with_prefix("client_model.", true)) {
    const auto dot = name.find('.');
    FEDPP_CHECK(dot != std::string::npos, "checkpoint tensor 'client_model." + name +
                                              "' does not name a client");
    client_models_[std::stoll(name.substr(0, dot))].set(name.substr(dot + 1), t.clone());
  }
}

// ---- client ----------------------------------------------------------------------------------

FedGktClient::FedGktClient(const AlgorithmSetup& setup)
    : setup_(setup), opt_(GktOptions::from_config(setup.cfg)) {
  model_ = std::dynamic_pointer_cast<ResNet8>(make_model_seeded("resnet8", setup.spec, 0));
  FEDPP_CHECK(model_, "model 'resnet8' is not a ResNet8");
  model_->to(setup.device);
}

std::optional<ExportedModel> FedGktClient::personal_model(int64_t, const ClientState& state,
                                                          const Message&) const {
  return export_private("resnet8", state, "model.");
}

void FedGktClient::restore(const ClientContext& ctx) {
  auto saved = ctx.state->tensors.with_prefix("model.", true);
  if (saved.empty()) {  // first round of this client: the common (or its own) initial weights
    const uint64_t seed =
        opt_.common_init
            ? derive_seed(setup_.seed, Purpose::kInit, {hash_name("fedgkt_client")})
            : derive_seed(setup_.seed, Purpose::kInit, {hash_name("fedgkt_client"), u(ctx.client_id)});
    auto fresh = make_model_seeded("resnet8", setup_.spec, seed);
    saved = module_state(*fresh);
  }
  load_module_state(*model_, saved);
}

Message FedGktClient::fit(const Message& in, ClientContext& ctx) {
  const Dataset& train = ctx.data->train;
  const int64_t n = train.size();
  const int64_t classes = setup_.spec.num_classes;
  const auto dev = ctx.device;
  auto& st = ctx.state->tensors;
  restore(ctx);

  // Server logits arrive keyed by train row; keep them in the state by row.
  if (in.tensors.contains("server_logits")) {
    const auto& z = in.tensors.at("server_logits");
    const auto& idx = in.tensors.at("server_idx");
    FEDPP_CHECK(idx.dim() == 1 && z.sizes() == c10::IntArrayRef({idx.size(0), classes}),
                "FedGKT server logits of shape " + c10::str(z.sizes()) + " do not match " +
                    str(idx.numel()) + " indices and " + str(classes) + " classes");
    FEDPP_CHECK(idx.numel() == 0 || (idx.min().item<int64_t>() >= 0 &&
                                     idx.max().item<int64_t>() < n),
                "FedGKT server logits name rows outside client " + str(ctx.client_id) +
                    "'s " + str(n) + " training samples");
    if (!st.contains("kd.logits")) {
      st.set("kd.logits", torch::zeros({n, classes}));
      st.set("kd.have", torch::zeros({n}, torch::kBool));
    }
    st.at("kd.logits").index_copy_(0, idx.to(torch::kLong), z.to(torch::kFloat));
    st.at("kd.have").index_fill_(0, idx.to(torch::kLong), true);
  }
  const bool kd = st.contains("kd.logits") && opt_.alpha > 0;
  torch::Tensor kd_logits = kd ? st.at("kd.logits") : torch::Tensor();
  torch::Tensor kd_have = kd ? st.at("kd.have") : torch::Tensor();

  torch::optim::Adam adam(model_->parameters(),
                          torch::optim::AdamOptions(opt_.client_lr).weight_decay(opt_.weight_decay));
  load_adam_state(adam, *model_, st.with_prefix("adam.", true));
  TrainOptions topt;
  topt.epochs = opt_.client_epochs;
  topt.batch_size = opt_.batch_size;
  model_->train();
  auto stats = train_epochs(train, topt, ctx.seed, adam,
                            [&](const torch::Tensor& x, const torch::Tensor& y,
                                const torch::Tensor& idx) {
                              auto z = model_->forward(x.to(dev));
                              auto loss = F::cross_entropy(z, y.to(dev));
                              if (!kd) return loss;
                              auto sel = kd_have.index_select(0, idx).nonzero().squeeze(1);
                              if (sel.numel() == 0) return loss;
                              auto teacher = kd_logits.index_select(0, idx.index_select(0, sel));
                              return loss + opt_.alpha * kd_loss(z.index_select(0, sel.to(dev)),
                                                                 teacher.to(dev),
                                                                 opt_.temperature);
                            });

  // Keep the private model and its optimiser for the next round.
  for (const auto& name : st.names())
    if (name.rfind("model.", 0) == 0 || name.rfind("adam.", 0) == 0) st.erase(name);
  for (const auto& [name, t] : module_state(*model_).clone()) st.set("model." + name, t);
  for (const auto& [name, t] : adam_state(adam, *model_)) st.set("adam." + name, t.cpu());

  // Extract H and z_c for every train row (and H for the test rows) in eval mode.
  torch::NoGradGuard no_grad;
  model_->eval();
  const int64_t bs = opt_.batch_size;
  std::vector<torch::Tensor> hs, zs;
  for (int64_t s = 0; s < n; s += bs) {
    auto h = model_->feature_map(train.inputs(s, std::min(n, s + bs)).to(dev));
    zs.push_back(model_->forward_from_map(h).cpu());
    hs.push_back(h.cpu());
  }
  Message out;
  std::vector<int64_t> empty_maps = {0};
  for (int64_t d : model_->feature_map_shape()) empty_maps.push_back(d);
  auto cat = [](std::vector<torch::Tensor>& v) { return torch::cat(v).contiguous(); };
  out.tensors.set("features", n > 0 ? cat(hs) : torch::zeros(empty_maps));
  out.tensors.set("client_logits", n > 0 ? cat(zs) : torch::zeros({0, classes}));
  out.tensors.set("labels", train.y.clone());
  out.tensors.set("idx", torch::arange(n, torch::kLong));
  // The client's resnet8, for the server's evaluation on the global test set only.
  for (const auto& [name, t] : module_state(*model_)) out.tensors.set("eval." + name, t.cpu().clone());
  const Dataset& test = ctx.data->test;
  const int64_t m = opt_.send_test_features ? test.size() : 0;
  if (m > 0) {
    std::vector<torch::Tensor> th;
    for (int64_t s = 0; s < m; s += bs)
      th.push_back(model_->feature_map(test.inputs(s, std::min(m, s + bs)).to(dev)).cpu());
    out.tensors.set("test_features", cat(th));
    out.tensors.set("test_labels", test.y.clone());
  }
  const auto macs = static_cast<double>(model_->macs_per_sample());
  out.metrics["num_samples"] = static_cast<double>(n);
  out.metrics["train_loss"] = stats.loss;
  out.metrics["client_macs"] =
      3.0 * macs * static_cast<double>(stats.samples) + macs * static_cast<double>(n) +
      static_cast<double>(model_->feature_map_macs_per_sample()) * static_cast<double>(m);
  return out;
}

Message FedGktClient::evaluate(const Message&, ClientContext& ctx) {
  restore(ctx);
  return evaluate_reply(*model_, ctx);
}

AlgorithmInfo fedgkt_info() {
  return {"fedgkt",
          "FedGKT: clients train resnet8, the server a large ResNet on their feature maps; "
          "logits distil both ways",
          true, [](const AlgorithmSetup& s) { return std::make_unique<FedGktServer>(s); },
          [](const AlgorithmSetup& s) { return std::make_unique<FedGktClient>(s); }};
}

}  // namespace fedpp
