// The two halves of every method that trains one global model on the clients: FedAvg, FedProx
// (algorithms/fedavg.hpp registers both) and Federated Dropout (algorithms/feddropout.hpp, which
// derives from them). Shared by those methods; no method's registration here.
//
// Server: holds the global model (config model.name, or model.init: a saved state dict); sends
// it to every sampled client; sets the new global model to the sample-weighted average of the
// returned models (AveragingServer); evaluates it on the global test set.
// Client: loads the global model and runs train.local_epochs epochs of SGD (train.*). With
// mu > 0 (FedProx) each batch loss gets the proximal term mu/2 * ||w - w_global||^2.
//
// Threading: one server thread; one client object per worker thread. Errors: fedpp::Error for
// bad config values, model.init files that do not fit, and replies or checkpoints that do not
// match the model.
#pragma once
#include <memory>

#include "fedpp/algorithms/common/averaging.hpp"
#include "fedpp/fl/algorithm.hpp"
#include "fedpp/fl/training.hpp"

namespace fedpp {

// FedProx's proximal term: sum_i ||params_i - anchor_i||^2 (differentiable in params).
torch::Tensor proximal_term(const std::vector<torch::Tensor>& params,
                            const std::vector<torch::Tensor>& anchor);

class FedAvgServer : public AveragingServer {
 public:
  explicit FedAvgServer(const AlgorithmSetup& setup);
  std::map<std::string, double> evaluate(int64_t round, const Dataset& test) override;
  // The global model, for personalised evaluation on each client's own split when the run asks
  // for it (eval.personalized = "true"; e.g. FedAvg beside personalised methods).
  std::optional<Message> configure_evaluate(int64_t round, int64_t client_id) override;
  std::optional<ExportedModel> global_model() const override;

 protected:
  AlgorithmSetup setup_;
  ModelPtr model_;  // evaluation copy of the architecture (global_ holds the weights)

 private:
  FedAvgServer(const AlgorithmSetup& setup, ModelPtr model);
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

}  // namespace fedpp
