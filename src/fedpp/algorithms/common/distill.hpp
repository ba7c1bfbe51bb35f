// Helpers shared by the distillation-family baselines (FedProto, FD, FML, FedKD): the soft-label
// distillation loss, per-class means of representations or logits (client side) and their
// count-weighted averaging over clients (server side), and the loss that pulls each sample
// towards the global vector of its class.
//
// Per-class statistics travel as two tensors: "<name>" float32 [C, D] (the mean of class c in
// row c; zeros where the class is absent) and "<name>_counts" float32 [C] (samples per class).
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "fedpp/fl/algorithm.hpp"
#include "fedpp/fl/training.hpp"

namespace fedpp {

// T^2 * KL(softmax(teacher/T) || softmax(student/T)), summed over classes and averaged over the
// batch. The teacher is a constant (detached); gradients reach the student only. T > 0.
torch::Tensor kd_loss(const torch::Tensor& student_logits, const torch::Tensor& teacher_logits,
                      double temperature);

struct ClassMeans {
  torch::Tensor means;   // float32 [C, D]; zero rows for absent classes
  torch::Tensor counts;  // float32 [C]
  // Puts both into `tensors` as "<name>" and "<name>_counts".
  void put(NamedTensors& tensors, const std::string& name) const;
  // Reads them back; throws fedpp::Error when absent or shaped inconsistently.
  static ClassMeans get(const NamedTensors& tensors, const std::string& name, int64_t classes);
};

// Per-class mean of the rows of `values` [N, D] by `labels` [N] (int64 in [0, classes)).
ClassMeans class_means(const torch::Tensor& values, const torch::Tensor& labels,
                       int64_t classes);

// Per-class means of fn(x) [B, D] over a whole data set, in batches, without gradients.
ClassMeans class_means_over(const Dataset& data,
                            const std::function<torch::Tensor(const torch::Tensor&)>& fn,
                            int64_t classes, int64_t batch_size = kInferenceBatch);

// Server side: for every class, the average of the clients' class means weighted by their
// per-class counts (sum_k n_kc m_kc / sum_k n_kc); counts are summed. Reads "<name>" and
// "<name>_counts" from each reply; throws fedpp::Error naming the client whose tensors are
// missing or whose shape differs from the first reply's. `replies` must not be empty.
ClassMeans average_class_means(const std::vector<Reply>& replies, const std::string& name,
                               int64_t classes);

// Mean squared error between each row of `values` [B, D] and the global vector of its label,
// over rows whose class has a global vector (counts > 0); other rows add zero. Normalised by
// B * D like torch's MSELoss with the absent rows' error set to zero (as HtFLlib does).
torch::Tensor class_target_mse(const torch::Tensor& values, const torch::Tensor& labels,
                               const ClassMeans& global);

// kd_loss towards the global logit vector of each row's label, over rows whose class has one;
// averaged over all B rows (absent rows add zero).
torch::Tensor class_target_kd(const torch::Tensor& logits, const torch::Tensor& labels,
                              const ClassMeans& global, double temperature);

// The reply of a personalised evaluation: accuracy, loss, num_samples.
Message evaluation_reply(const EvalStats& s);

// The server of FedProto and FD: holds the global per-class means under tensor name `name`
// (none before the first aggregation), sends them to every sampled client (nothing in round 1),
// and replaces them each round by average_class_means of the replies. Personalised evaluation
// sends them too when `send_on_evaluate` (nearest-prototype inference), else an empty message.
class ClassMeansServer : public ServerAlgorithm {
 public:
  ClassMeansServer(const AlgorithmSetup& setup, std::string name, bool send_on_evaluate);
  Message configure_fit(int64_t round, int64_t client_id) override;
  void aggregate(int64_t round, const std::vector<Reply>& replies) override;
  std::optional<Message> configure_evaluate(int64_t round, int64_t client_id) override;
  Message save_state() const override;
  void load_state(const Message& state) override;
  // Undefined tensors before the first aggregation.
  const ClassMeans& global() const { return global_; }

 private:
  std::string name_;
  int64_t classes_;
  bool send_on_evaluate_;
  ClassMeans global_;
};

}  // namespace fedpp
