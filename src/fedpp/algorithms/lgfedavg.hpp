// LG-FedAvg (Liang et al., "Think Locally, Act Globally", 2020) in the model-heterogeneous
// setting, following HtFLlib's convention (clientlg/serverlg): only the head (the classifier,
// representation -> classes; the same shape on every zoo model) is shared and averaged, the
// feature extractors stay private. (The original paper shares the top layers of a homogeneous
// model; with heterogeneous extractors only the head can be shared.)
//
// Server: global head initialised from client 0's zoo model (seeded by the run seed); sends it
// to every sampled client; averages the returned heads by sample count (AveragingServer).
// Client: replaces its head with the received one, trains the whole model (train.*), keeps the
// model in ClientState (prefix "model.") and replies with its head + num_samples.
// Personalised evaluation: the client's extractor with the newest global head, on its own test
// split (as HtFLlib evaluates after sending the parameters).
#pragma once
#include "fedpp/algorithms/common/averaging.hpp"
#include "fedpp/algorithms/common/hetero.hpp"

namespace fedpp {

class LgFedAvgServer : public AveragingServer {
 public:
  explicit LgFedAvgServer(const AlgorithmSetup& setup);
  std::optional<Message> configure_evaluate(int64_t round, int64_t client_id) override;
  const NamedTensors& global_head() const { return global_; }
};

class LgFedAvgClient : public ClientAlgorithm {
 public:
  explicit LgFedAvgClient(const AlgorithmSetup& setup);
  Message fit(const Message& in, ClientContext& ctx) override;
  Message evaluate(const Message& in, ClientContext& ctx) override;
  // The private model with the shared head of `shared` (common/heads.hpp: export_with_head).
  std::optional<ExportedModel> personal_model(int64_t client_id, const ClientState& state,
                                              const Message& shared) const override;

 private:
  // The client's private model with its head replaced by the one in `in`.
  Model& load(const Message& in, const ClientContext& ctx);
  TrainOptions train_;
  std::vector<std::string> models_;
  PrivateModels cache_;
};

AlgorithmInfo lgfedavg_info();

}  // namespace fedpp
