#include "fedpp/fl/training.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "fedpp/core/config.hpp"
#include "fedpp/core/error.hpp"
#include "fedpp/core/random.hpp"
#include "fedpp/core/seed.hpp"

namespace fedpp {

TrainOptions TrainOptions::from_config(const Config& cfg, const std::string& s) {
  TrainOptions o;
  o.epochs = cfg.get_int(s + ".local_epochs", o.epochs, 1, 10000);
  o.batch_size = cfg.get_int(s + ".batch_size", o.batch_size, 1, 1 << 20);
  o.lr = cfg.get_double(s + ".lr", o.lr, 0.0, 1e3);
  o.momentum = cfg.get_double(s + ".momentum", o.momentum, 0.0, 0.9999);
  o.weight_decay = cfg.get_double(s + ".weight_decay", o.weight_decay, 0.0, 1.0);
  o.clip_grad_norm = cfg.get_double(s + ".clip_grad_norm", o.clip_grad_norm, 0.0);
  return o;
}

std::unique_ptr<torch::optim::SGD> make_sgd(const std::vector<torch::Tensor>& params,
                                            const TrainOptions& opt) {
  return std::make_unique<torch::optim::SGD>(
      params, torch::optim::SGDOptions(opt.lr).momentum(opt.momentum).weight_decay(
                  opt.weight_decay));
}

std::vector<int64_t> shuffled_order(int64_t n, uint64_t seed) {
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  Rng rng(seed);
  shuffle(order, rng);
  return order;
}

TrainStats train_epochs(const Dataset& data, const TrainOptions& opt, uint64_t seed,
                        torch::optim::Optimizer& optimizer, const BatchLoss& loss) {
  TrainStats stats;
  const int64_t n = data.size();
  if (n == 0) return stats;
  std::vector<torch::Tensor> params;
  for (const auto& g : optimizer.param_groups())
    for (const auto& p : g.params()) params.push_back(p);
  for (int64_t e = 0; e < opt.epochs; ++e) {
    auto order = shuffled_order(n, derive_seed(seed, {static_cast<uint64_t>(e)}));
    auto idx_all = torch::from_blob(order.data(), {n}, torch::kLong);
    double sum = 0.0;
    for (int64_t start = 0; start < n; start += opt.batch_size) {
      int64_t end = std::min(n, start + opt.batch_size);
      auto idx = idx_all.slice(0, start, end).clone();
      auto x = data.inputs(idx);
      auto y = data.y.index_select(0, idx);
      optimizer.zero_grad();
      auto l = loss(x, y, idx);
      double lv = l.item<double>();
      FEDPP_CHECK(std::isfinite(lv),
                  "training loss became non-finite (" + std::to_string(lv) +
                      "); lower train.lr or enable train.clip_grad_norm");
      l.backward();
      if (opt.clip_grad_norm > 0) torch::nn::utils::clip_grad_norm_(params, opt.clip_grad_norm);
      optimizer.step();
      sum += lv * static_cast<double>(end - start);
      stats.steps += 1;
    }
    stats.samples += n;
    stats.loss = sum / static_cast<double>(n);
  }
  return stats;
}

EvalStats evaluate_logits(const Dataset& data,
                          const std::function<torch::Tensor(const torch::Tensor&)>& forward,
                          int64_t batch_size) {
  torch::NoGradGuard no_grad;
  EvalStats s;
  const int64_t n = data.size();
  if (n == 0) return s;
  int64_t correct = 0;
  double loss_sum = 0.0;
  for (int64_t start = 0; start < n; start += batch_size) {
    int64_t end = std::min(n, start + batch_size);
    auto x = data.inputs(start, end);
    auto y = data.y.slice(0, start, end);
    auto logits = forward(x);
    loss_sum += torch::nn::functional::cross_entropy(
                    logits, y, torch::nn::functional::CrossEntropyFuncOptions().reduction(
                                   torch::kSum))
                    .item<double>();
    correct += logits.argmax(1).eq(y).sum().item<int64_t>();
  }
  s.samples = n;
  s.accuracy = static_cast<double>(correct) / static_cast<double>(n);
  s.loss = loss_sum / static_cast<double>(n);
  return s;
}

}  // namespace fedpp

#include <mutex>

#include "fedpp/models/model.hpp"

namespace fedpp {

void with_seeded_torch(uint64_t seed, const std::function<void()>& fn) {
  static std::mutex mu;
  std::lock_guard<std::mutex> lock(mu);
  torch::manual_seed(seed & 0x7fffffffffffffffULL);
  fn();
}

std::shared_ptr<Model> make_model_seeded(const std::string& name, const ModelSpec& spec,
                                         uint64_t seed) {
  std::shared_ptr<Model> m;
  with_seeded_torch(seed, [&] { m = make_model(name, spec); });
  return m;
}

}  // namespace fedpp
