// FD, federated distillation (Jeong et al., "Communication-Efficient On-Device Machine Learning:
// Federated Distillation and Augmentation under Non-IID Private Data", 2018), in the
// model-heterogeneous setting of docs/methods/fedmoe.md.
//
// Client k trains its own private zoo model (common/hetero.hpp; prefix "model." in its ClientState) on
// CE + fd.lambda * D(logits, G[y]), where G[y] is the global mean logit vector of the sample's
// label (samples whose class has none yet add nothing; round 1 is plain CE). D is, by fd.loss:
//   "kd" (default): T^2 * KL(softmax(G[y]/T) || softmax(logits/T)), T = fd.temperature, the
//         paper's soft-label distillation (the paper fixes this detail, so it is the default);
//   "mse": mean squared error over batch x classes, as HtFLlib's clientdistill does (measured
//         here: unstable at lambda 1, training loss jumps to ~46 in round 2).
// After training it uploads only its per-class mean logits over its training split, computed in
// one extra forward pass with the trained model ("logits" [C, C] and "logits_counts" [C]).
// Server: per-class average weighted by the clients' per-class counts (HtFLlib: unweighted over
// clients); the paper's variant that subtracts a client's own contribution is not used.
// Evaluation: each client's own model on its own test split.
//
// Config keys: fd.lambda (default 1.0), fd.loss (kd | mse), fd.temperature (default 1.0), plus
// hetero.* and train.*.
// Fit metrics: num_samples, train_loss, client_macs (3 x forward MACs x samples trained, plus
// the logit pass's forward MACs).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "fedpp/algorithms/common/distill.hpp"
#include "fedpp/algorithms/common/hetero.hpp"

namespace fedpp {

class FdClient : public ClientAlgorithm {
 public:
  explicit FdClient(const AlgorithmSetup& setup);
  Message fit(const Message& in, ClientContext& ctx) override;
  Message evaluate(const Message& in, ClientContext& ctx) override;
  std::optional<ExportedModel> personal_model(int64_t client_id, const ClientState& state,
                                              const Message&) const override;

 private:
  TrainOptions train_;
  double lambda_;
  bool kd_;             // fd.loss == "kd"
  double temperature_;
  int64_t classes_;
  std::vector<std::string> models_;  // zoo model of each client
  PrivateModels cache_;
};

AlgorithmInfo fd_info();

}  // namespace fedpp
