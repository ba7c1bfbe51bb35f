// FedProto (Tan et al., "FedProto: Federated Prototype Learning across Heterogeneous Clients",
// AAAI 2022), in the model-heterogeneous setting of docs/methods/fedmoe.md.
//
// Client k trains its own private zoo model (common/hetero.hpp; prefix "model." in its ClientState) on
// CE + fedproto.lambda * MSE(features(x), P[y]), where P[y] is the global prototype of the
// sample's label (samples whose class has no global prototype yet add no MSE term; round 1 is
// plain CE). After training it uploads only its per-class prototypes: the mean representation
// of each class over its training split, computed in one extra forward pass with the trained
// model (tensors "protos" [C, D] and "protos_counts" [C]).
// Server: the global prototype of class c is the average of the clients' prototypes weighted by
// their per-class sample counts (the paper's |D_k,c| weighting; HtFLlib averages the clients'
// prototypes unweighted); it replaces the previous round's.
// Evaluation (fedproto.inference): "head" (default) classifies with the client's own model;
// "prototype" assigns the class of the nearest global prototype (squared L2), as HtFLlib's
// test_metrics does (its loss is then the cross-entropy of negative squared distances).
// Follows HtFLlib (TsingZ0/HtFLlib clientproto/serverproto) in the MSE normalisation (mean over
// batch x D, absent classes contributing zero) and in plain SGD from train.*.
// Every client model must have the same representation size D (CNN-1..5: 500).
//
// Config keys: fedproto.lambda (default 1.0), fedproto.inference (head | prototype), plus
// hetero.* and train.*.
// Fit metrics: num_samples, train_loss, client_macs (3 x forward MACs x samples trained, plus
// the prototype pass's feature MACs).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "fedpp/algorithms/common/distill.hpp"
#include "fedpp/algorithms/common/hetero.hpp"

namespace fedpp {

class FedProtoClient : public ClientAlgorithm {
 public:
  explicit FedProtoClient(const AlgorithmSetup& setup);
  Message fit(const Message& in, ClientContext& ctx) override;
  Message evaluate(const Message& in, ClientContext& ctx) override;
  std::optional<ExportedModel> personal_model(int64_t client_id, const ClientState& state,
                                              const Message&) const override;

 private:
  TrainOptions train_;
  double lambda_;
  bool prototype_inference_;
  int64_t classes_;
  std::vector<std::string> models_;  // zoo model of each client
  PrivateModels cache_;
};

// The representation size shared by every client's model; throws fedpp::Error naming
// hetero.models when they differ.
int64_t common_feature_dim(const AlgorithmSetup& setup, const std::string& method);

AlgorithmInfo fedproto_info();

}  // namespace fedpp
