// LG-FedAvg (Liang et al., "Think Locally, Act Globally", 2020) in the model-heterogeneous
// setting, following HtFLlib's convention (clientlg/serverlg): only the head (the classifier,
// representation -> classes; the same shape on every zoo model) is shared and averaged, the
// feature extractors stay private. (The original paper shares the top layers of a homogeneous
// model; with heterogeneous extractors only the head can be shared.)
//
// Server: global head initialised from client 0's zoo model (seeded by the run seed); sends it
// to every sampled client; averages the returned heads by sample count (weighted_average).
// Client: replaces its head with the received one, trains the whole model (train.*), keeps the
// model in ClientState (prefix "model.") and replies with its head + num_samples.
// Personalised evaluation: the client's extractor with the newest global head, on its own test
// split (as HtFLlib evaluates after sending the parameters).
#pragma once
#include "fedpp/algorithms/hetero.hpp"

namespace fedpp {

class LgFedAvgServer : public ServerAlgorithm {
 public:
  explicit LgFedAvgServer(const AlgorithmSetup& setup);
  Message configure_fit(int64_t round, int64_t client_id) override;
  void aggregate(int64_t round, const std::vector<Reply>& replies) override;
  std::optional<Message> configure_evaluate(int64_t round, int64_t client_id) override;
  Message save_state() const override;
  void load_state(const Message& state) override;
  const NamedTensors& global_head() const { return head_; }

 private:
  NamedTensors head_;  // the shared head's tensors (owned)
};

class LgFedAvgClient : public ClientAlgorithm {
 public:
  explicit LgFedAvgClient(const AlgorithmSetup& setup);
  Message fit(const Message& in, ClientContext& ctx) override;
  Message evaluate(const Message& in, ClientContext& ctx) override;

 private:
  // The client's private model with its head replaced by the one in `in`.
  Model& load(const Message& in, const ClientContext& ctx);
  TrainOptions train_;
  std::vector<std::string> models_;
  PrivateModels cache_;
};

// Checks that every client model's head has the same tensor names and shapes (shared heads);
// returns the head state of client 0's model built from `seed`. Used by LG-FedAvg and FedGH.
NamedTensors shared_head_init(const AlgorithmSetup& setup, const std::vector<std::string>& models,
                              uint64_t seed, const std::string& method);
// Loads `head` into m's head tensors (names and shapes must match; fedpp::Error otherwise).
void load_head(Model& m, const NamedTensors& head);

AlgorithmInfo lgfedavg_info();

}  // namespace fedpp
