// Local training and evaluation helpers shared by the algorithms: seeded mini-batch epochs,
// SGD with momentum / weight decay / gradient clipping from config keys train.*, and accuracy
// and loss of any forward function on a Dataset. Nothing here knows about any one method.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "fedpp/data/dataset.hpp"

namespace fedpp {

class Config;

struct TrainOptions {
  int64_t epochs = 1;
  int64_t batch_size = 32;
  double lr = 0.05;
  double momentum = 0.0;
  double weight_decay = 0.0;
  double clip_grad_norm = 0.0;  // 0 = off
  // Reads <section>.local_epochs, .batch_size, .lr, .momentum, .weight_decay, .clip_grad_norm.
  static TrainOptions from_config(const Config& cfg, const std::string& section = "train");
};

struct TrainStats {
  double loss = 0.0;     // mean loss over all samples of the last epoch
  int64_t samples = 0;   // samples processed over all epochs
  int64_t steps = 0;
};

// loss(x, y) -> scalar loss of one batch (the method's forward pass and loss terms).
using BatchLoss = std::function<torch::Tensor(const torch::Tensor& x, const torch::Tensor& y,
                                              const torch::Tensor& idx)>;

// SGD over `params` (with the options' momentum and weight decay).
std::unique_ptr<torch::optim::SGD> make_sgd(const std::vector<torch::Tensor>& params,
                                            const TrainOptions& opt);

// Runs opt.epochs epochs of shuffled mini-batches (the order drawn from `seed`) over `data`,
// stepping `optimizer` on loss(x, y, idx) where idx are the samples' row numbers in `data`.
// Clips the gradient norm of the optimiser's parameters when opt.clip_grad_norm > 0.
// Throws fedpp::Error when the loss becomes non-finite (naming train.lr as the usual cause).
TrainStats train_epochs(const Dataset& data, const TrainOptions& opt, uint64_t seed,
                        torch::optim::Optimizer& optimizer, const BatchLoss& loss);

struct EvalStats {
  double accuracy = 0.0;
  double loss = 0.0;
  int64_t samples = 0;
};

// Rows per forward pass when a model only infers (evaluation, class prototypes, distillation
// targets). Measured on 2 cores (FedAvg CNN, no grad): 256 rows ran ~4,600 images/s, 1,000 rows
// ~800, because a 1,000-row activation (100 MB) is past glibc's largest heap block (32 MiB, see
// runtime/threads.hpp) and is mapped, page-faulted and unmapped on every batch, and is far
// outside the caches. Results do not depend on it beyond float rounding.
inline constexpr int64_t kInferenceBatch = 256;

// Accuracy and mean cross-entropy of forward(x) -> logits over `data`, in eval mode, no grad.
EvalStats evaluate_logits(const Dataset& data,
                          const std::function<torch::Tensor(const torch::Tensor&)>& forward,
                          int64_t batch_size = kInferenceBatch);

// Mini-batch row order for one epoch: a seeded permutation of [0, n).
std::vector<int64_t> shuffled_order(int64_t n, uint64_t seed);

}  // namespace fedpp

#include <string>
namespace fedpp {
struct ModelSpec;
class Model;
// Builds zoo model `name` with weights initialised from `seed`. Initialisation draws from the
// global torch RNG, so this holds a process-wide lock while it seeds and builds.
std::shared_ptr<Model> make_model_seeded(const std::string& name, const ModelSpec& spec,
                                         uint64_t seed);
// Runs `fn` under the same lock with the global torch RNG seeded (for other seeded inits).
void with_seeded_torch(uint64_t seed, const std::function<void()>& fn);
}  // namespace fedpp
