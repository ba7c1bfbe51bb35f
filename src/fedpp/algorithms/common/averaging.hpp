// The averaging server every method with one shared set of tensors uses (FedAvg's global model,
// FML's and FedKD's shared model, LG-FedAvg's head, FedMoE's global expert), and the
// sample-weighted average it is built on. Shared by the methods in algorithms/; no method's own
// logic here.
//
// Threading: a server is driven by one thread (the runtime's); weighted_average is a pure
// function. Errors: fedpp::Error, naming the client or tensor, for replies or checkpoints that do
// not match the shared tensors.
#pragma once
#include <string>
#include <vector>

#include "fedpp/fl/algorithm.hpp"

namespace fedpp {

// Sample-weighted average of the named tensors of `replies` (metric "num_samples" weights;
// integer tensors such as BatchNorm's num_batches_tracked are taken from the first reply).
// Throws fedpp::Error when a reply lacks a tensor or has another shape.
NamedTensors weighted_average(const std::vector<Reply>& replies, const NamedTensors& like);

// A server around one set of shared tensors (global_): configure_fit sends them to every sampled
// client, aggregate replaces them with the sample-weighted average of the replies (a round
// without replies keeps them), save_state / load_state checkpoint them (load_state checks every
// name and shape). Personalised evaluation and global evaluation are the subclass's.
class AveragingServer : public ServerAlgorithm {
 public:
  Message configure_fit(int64_t round, int64_t client_id) override;
  // A reply carries new values of exactly the tensors sent, nothing else.
  std::optional<NamedTensors> reply_schema(int64_t client_id, const Message& sent) const override;
  void aggregate(int64_t round, const std::vector<Reply>& replies) override;
  Message save_state() const override;
  void load_state(const Message& state) override;
  const NamedTensors& global() const { return global_; }

 protected:
  // `initial`: the shared tensors at round 0 (owned from here); `what` names them in errors,
  // e.g. "model 'fedavg_cnn'" or "the shared head".
  AveragingServer(NamedTensors initial, std::string what);
  NamedTensors global_;
  std::string what_;
};

// The server of FML and FedKD: the shared homogeneous model (zoo model named by config key
// `model_key`, default cnn5), initialised from derive_seed(run seed, kInit, {0}). Personalised
// evaluation gets an empty message (clients evaluate their private models); there is no global
// evaluation.
class SharedModelServer : public AveragingServer {
 public:
  SharedModelServer(const AlgorithmSetup& setup, const std::string& model_key);
  std::optional<Message> configure_evaluate(int64_t round, int64_t client_id) override;
};

}  // namespace fedpp
