// Standalone (local training only), the lower bound of the pFedMoE paper's baselines: every
// client trains its own zoo model (common/hetero.hpp: hetero.setting / hetero.models) on its own data
// with train.*; nothing is shared. The server sends an empty Message; a client replies with no
// tensors, only num_samples, train_loss and client_macs. The model lives in the client's
// ClientState (prefix "model."). Personalised: every client is evaluated on its own test split.
#pragma once
#include "fedpp/algorithms/common/hetero.hpp"

namespace fedpp {

class StandaloneServer : public ServerAlgorithm {
 public:
  explicit StandaloneServer(const AlgorithmSetup& setup);
  Message configure_fit(int64_t, int64_t) override { return {}; }
  void aggregate(int64_t, const std::vector<Reply>&) override {}
  std::optional<Message> configure_evaluate(int64_t, int64_t) override { return Message{}; }
  Message save_state() const override { return {}; }
  void load_state(const Message&) override {}
};

class StandaloneClient : public ClientAlgorithm {
 public:
  explicit StandaloneClient(const AlgorithmSetup& setup);
  Message fit(const Message& in, ClientContext& ctx) override;
  Message evaluate(const Message& in, ClientContext& ctx) override;
  std::optional<ExportedModel> personal_model(int64_t client_id, const ClientState& state,
                                              const Message&) const override;

 private:
  TrainOptions train_;
  std::vector<std::string> models_;  // zoo model of every client
  PrivateModels cache_;
};

AlgorithmInfo standalone_info();

}  // namespace fedpp
