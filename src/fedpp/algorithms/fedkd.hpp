// FedKD (Wu et al., "Communication-efficient federated learning via knowledge distillation",
// Nature Communications 2022), in the model-heterogeneous setting of docs/methods/fedmoe.md.
//
// Client k holds a private teacher (its own zoo model, common/hetero.hpp; prefix "model.") and a private
// hidden-state adapter W_h = Linear(student D -> teacher D, no bias) (prefix "wh.", initialised
// from private_init_seed(run seed, k, 1)); the student is the shared homogeneous model
// (fedkd.shared_model, default cnn5). Each round the client loads the received student and trains
// all three together (one SGD optimiser, train.*) on, per batch, with t/s the teacher's and
// student's logits, h_t/h_s their representations and the adaptive weight a = 1 / (CE_t + CE_s):
//   teacher: CE_t + a * (KL(softmax(s) || softmax(t)) + MSE(h_t, W_h h_s))
//   student: CE_s + a * (KL(softmax(t) || softmax(s)) + MSE(h_t, W_h h_s))
// (the sum of both is minimised; each KL's target is a constant; the paper's and HtFLlib's
// hidden loss appears in both, so W_h gets it twice). Our choice: a is a constant per batch
// (detached), where HtFLlib lets gradients flow through the denominator.
// Upload: the student's update (trained minus received), and only that. With fedkd.svd = true
// (default) every update tensor with 2+ dimensions and 2+ rows is reshaped to [rows, rest] and
// replaced by truncated SVD factors "<name>.svd_us" = U_r diag(S_r) [rows, r] and
// "<name>.svd_v" = V_r^T [r, rest], r being the fewest singular values whose squared sum reaches
// the energy fraction of the total (sent dense when that is not smaller). The energy grows
// linearly over the run from fedkd.energy_start to fedkd.energy_end (HtFLlib's T_start 0.95,
// T_end 0.98): round r uses start + (r - 1) / rounds * (end - start); the server sends it as
// metric "svd_energy". HtFLlib compresses the weights themselves and the downlink too; here the
// downlink is the dense global student.
// Server: recovers every update, averages them by sample count, adds the average to the student.
// Personalised evaluation uses the teacher.
//
// Config keys: fedkd.shared_model (cnn5), fedkd.svd (true), fedkd.energy_start (0.95),
// fedkd.energy_end (0.98), plus rounds, hetero.* and train.*.
// Fit metrics: num_samples, train_loss, client_macs (3 x (teacher + student + W_h forward MACs)
// x samples trained), upload_fraction (uploaded floats / dense floats).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "fedpp/algorithms/common/averaging.hpp"  // SharedModelServer
#include "fedpp/algorithms/common/distill.hpp"
#include "fedpp/algorithms/common/hetero.hpp"

namespace fedpp {

// Truncated-SVD encoding of an update (see above). energy in (0, 1].
NamedTensors svd_compress(const NamedTensors& update, double energy);
// Inverse of svd_compress: the dense tensors, shaped like `like`. Throws fedpp::Error naming a
// tensor that is missing or has the wrong shape.
NamedTensors svd_recover(const NamedTensors& compressed, const NamedTensors& like);

class FedKdServer : public SharedModelServer {
 public:
  explicit FedKdServer(const AlgorithmSetup& setup);
  Message configure_fit(int64_t round, int64_t client_id) override;
  // Open: the update travels as SVD factors whose rank depends on the client's data.
  std::optional<NamedTensors> reply_schema(int64_t, const Message&) const override {
    return std::nullopt;
  }
  void aggregate(int64_t round, const std::vector<Reply>& replies) override;
  double energy(int64_t round) const;

 private:
  int64_t rounds_;
  double energy_start_, energy_end_;
};

class FedKdClient : public ClientAlgorithm {
 public:
  explicit FedKdClient(const AlgorithmSetup& setup);
  Message fit(const Message& in, ClientContext& ctx) override;
  Message evaluate(const Message& in, ClientContext& ctx) override;
  std::optional<ExportedModel> personal_model(int64_t client_id, const ClientState& state,
                                              const Message&) const override;

 private:
  TrainOptions train_;
  bool svd_;
  uint64_t run_seed_;
  std::vector<std::string> models_;  // teacher zoo model of each client
  PrivateModels cache_;
  ModelPtr student_;  // this worker's student; weights arrive with every message
};

AlgorithmInfo fedkd_info();

}  // namespace fedpp
