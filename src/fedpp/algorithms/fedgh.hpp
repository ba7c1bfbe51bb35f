// FedGH (Yi et al., "FedGH: Heterogeneous Federated Learning with Generalized Global Header",
// ACM MM 2023), following HtFLlib's FedGH (clientgh/servergh) for the details:
// - Server: one global head (representation -> classes), initialised from client 0's zoo model
//   (run seed). Sent to every sampled client and, for personalised evaluation, to every client.
// - Client: replaces its head with the global head, trains its whole private model (train.*,
//   model kept in ClientState, prefix "model."), then, in eval mode, computes the mean
//   representation of each class present in its training data (the prototypes) and uploads
//   them: tensors "protos" [K, feature_dim] and "labels" [K] (class ids as floats).
// - Server: trains the global head on the received (prototype, label) pairs with cross-entropy,
//   every pair weighted equally. fedgh.server_procedure chooses how:
//   "paper" (default; the authors' code, LipingYi/FedGH FedGH.py): one pass, one SGD step per
//     prototype (batch 1, in a seeded random order; the authors go client by client), at
//     fedgh.server_lr (default 0.01, the paper's learning rate) with train.momentum,
//     train.weight_decay and train.clip_grad_norm, a fresh optimiser each round;
//   "epochs" (HtFLlib's servergh.train_head): fedgh.server_epochs shuffled epochs (default 100)
//     of mini-batches of train.batch_size, plain SGD at fedgh.server_lr. fedpp before this
//     option ran this with server_lr = 1.0 and server_epochs = 1000.
//   The server's multiply-adds (3 x head MACs per pair and step) are reported as server_macs.
// - Evaluation: the runtime's personalised evaluation uses the new global head on the client's
//   extractor (HtFLlib's point); the authors' code evaluates right after local training, which
//   is the fit metric personal_accuracy_after_fit.
#pragma once
#include "fedpp/algorithms/common/hetero.hpp"

namespace fedpp {

class FedGhServer : public ServerAlgorithm {
 public:
  explicit FedGhServer(const AlgorithmSetup& setup);
  Message configure_fit(int64_t round, int64_t client_id) override;
  void aggregate(int64_t round, const std::vector<Reply>& replies) override;
  std::map<std::string, double> aggregate_metrics() const override;
  std::optional<Message> configure_evaluate(int64_t round, int64_t client_id) override;
  Message save_state() const override;
  void load_state(const Message& state) override;
  NamedTensors global_head() const;

 private:
  uint64_t seed_;
  TrainOptions server_;  // lr, epochs, batch size of the head training
  double last_macs_ = 0.0;
  ModelPtr model_;       // holds the global head (its extractor is unused)
};

class FedGhClient : public ClientAlgorithm {
 public:
  explicit FedGhClient(const AlgorithmSetup& setup);
  Message fit(const Message& in, ClientContext& ctx) override;
  Message evaluate(const Message& in, ClientContext& ctx) override;
  // The private model with the shared head of `shared` (common/heads.hpp: export_with_head).
  std::optional<ExportedModel> personal_model(int64_t client_id, const ClientState& state,
                                              const Message& shared) const override;

 private:
  TrainOptions train_;
  std::vector<std::string> models_;
  PrivateModels cache_;
};

// Per-class mean of m.features(x) over `data` (eval mode, no grad): protos [K, D] and the K
// present class ids (ascending) as a float tensor.
std::pair<torch::Tensor, torch::Tensor> class_prototypes(Model& m, const Dataset& data,
                                                         torch::Device device);

AlgorithmInfo fedgh_info();

}  // namespace fedpp
