// FML, federated mutual learning (Shen et al., "Federated Mutual Learning", 2020), in the
// model-heterogeneous setting of docs/methods/fedmoe.md.
//
// Client k holds its private zoo model (common/hetero.hpp; prefix "model." in its ClientState) and a
// copy of the shared homogeneous "meme" model (zoo model fml.shared_model, default cnn5, the
// smallest of CNN-1..5). Each round it loads the received meme weights and trains both models
// together with deep mutual learning on every batch:
//   private: alpha * CE(p, y) + (1 - alpha) * KL(softmax(m) || softmax(p))
//   meme:    beta  * CE(m, y) + (1 - beta)  * KL(softmax(p) || softmax(m))
// (p, m: the two models' logits; each KL's target is a constant; KL summed over classes and
// averaged over the batch, where HtFLlib's nn.KLDivLoss() also averages over classes). One SGD
// optimiser (train.*) steps both models on the sum of the two losses, which gives each model
// exactly its own loss's gradient.
// Only the meme model travels: the server averages the returned meme models by sample count
// (HtFLlib: unweighted). Personalised evaluation uses the private model.
//
// Config keys: fml.shared_model (zoo name, default cnn5), fml.alpha (0.5), fml.beta (0.5),
// plus hetero.* and train.*.
// Fit metrics: num_samples, train_loss (sum of both losses), client_macs (3 x (private +
// meme forward MACs) x samples trained).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "fedpp/algorithms/common/averaging.hpp"  // SharedModelServer, FML's server
#include "fedpp/algorithms/common/distill.hpp"
#include "fedpp/algorithms/common/hetero.hpp"

namespace fedpp {

class FmlClient : public ClientAlgorithm {
 public:
  explicit FmlClient(const AlgorithmSetup& setup);
  Message fit(const Message& in, ClientContext& ctx) override;
  Message evaluate(const Message& in, ClientContext& ctx) override;
  std::optional<ExportedModel> personal_model(int64_t client_id, const ClientState& state,
                                              const Message&) const override;

 private:
  TrainOptions train_;
  double alpha_, beta_;
  std::vector<std::string> models_;  // private zoo model of each client
  PrivateModels cache_;
  ModelPtr meme_;  // this worker's meme model; weights arrive with every message
};

AlgorithmInfo fml_info();

}  // namespace fedpp
