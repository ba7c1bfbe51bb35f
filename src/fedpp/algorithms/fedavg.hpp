// FedAvg (McMahan et al. 2017) and FedProx (Li et al. 2020).
//
// Server: holds the global model (config model.name); sends it to every sampled client; sets the
// new global model to the sample-weighted average of the returned models
// (w = sum_k n_k / n * w_k; integer buffers are taken from the first reply); evaluates it on
// the global test set.
// Client: loads the global model and runs train.local_epochs epochs of SGD (train.*). FedProx
// adds the proximal term mu/2 * ||w - w_global||^2 to each batch loss (fedprox.mu).
// Both halves are reusable: other global-model methods derive from them.
#pragma once
#include <memory>

#include "fedpp/fl/algorithm.hpp"
#include "fedpp/fl/training.hpp"

namespace fedpp {

// Sample-weighted average of the named tensors of `replies` (metric "num_samples" weights).
// Throws fedpp::Error when a reply lacks a tensor or has another shape.
NamedTensors weighted_average(const std::vector<Reply>& replies, const NamedTensors& like);

// FedProx's proximal term: sum_i ||params_i - anchor_i||^2 (differentiable in params).
torch::Tensor proximal_term(const std::vector<torch::Tensor>& params,
                            const std::vector<torch::Tensor>& anchor);

class FedAvgServer : public ServerAlgorithm {
 public:
  explicit FedAvgServer(const AlgorithmSetup& setup);
  Message configure_fit(int64_t round, int64_t client_id) override;
  void aggregate(int64_t round, const std::vector<Reply>& replies) override;
  std::map<std::string, double> evaluate(int64_t round, const Dataset& test) override;
  // The global model, for personalised evaluation on each client's own split when the run asks
  // for it (eval.personalized = "true"; e.g. FedAvg beside personalised methods).
  std::optional<Message> configure_evaluate(int64_t round, int64_t client_id) override;
  std::optional<ExportedModel> global_model() const override;
  Message save_state() const override;
  void load_state(const Message& state) override;

  const NamedTensors& global() const { return global_; }

 protected:
  AlgorithmSetup setup_;
  ModelPtr model_;        // evaluation copy of the architecture
  NamedTensors global_;   // the global weights (owned)
};

class FedAvgClient : public ClientAlgorithm {
 public:
  // mu > 0 makes it a FedProx client.
  FedAvgClient(const AlgorithmSetup& setup, double mu);
  Message fit(const Message& in, ClientContext& ctx) override;
  Message evaluate(const Message& in, ClientContext& ctx) override;

 protected:
  AlgorithmSetup setup_;
  TrainOptions train_;
  double mu_;
  ModelPtr model_;  // this worker's copy of the architecture; weights come in every round
};

AlgorithmInfo fedavg_info();
AlgorithmInfo fedprox_info();

}  // namespace fedpp
