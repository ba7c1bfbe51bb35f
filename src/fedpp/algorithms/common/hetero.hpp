// Helpers shared by the model-heterogeneous personalised methods (FedMoE, Standalone, LG-FedAvg,
// FedGH, FedProto, FD, FML, FedKD): which zoo model each client uses, and a client's private
// modules kept in its ClientState between rounds.
//
// Config keys (read by client_models):
//   hetero.setting  "heterogeneous" (default) | "homogeneous"
//   hetero.models   list of zoo names; client k uses entry k mod len. Default
//                   ["cnn1","cnn2","cnn3","cnn4","cnn5"] (client k gets CNN-(k mod 5 + 1)) when
//                   heterogeneous, ["cnn1"] when homogeneous.
// Private state: a module's parameters and buffers are stored in ClientState::tensors under
// "<prefix><tensor name>" (e.g. "local.conv1.weight"). On a client's first round the module is
// built from a seed derived from (run seed, Purpose::kInit, client id, salt), so every run with
// the same seed starts every client from the same weights regardless of thread scheduling.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "fedpp/fl/algorithm.hpp"
#include "fedpp/fl/training.hpp"

namespace fedpp {

// The zoo model name of every client (size num_clients). Throws fedpp::Error naming the key
// for an unknown model, an empty list, or a homogeneous setting given several names.
std::vector<std::string> client_models(const Config& cfg, int64_t num_clients);

// models[client], or fedpp::Error when the id is outside the run's clients.
const std::string& model_of(const std::vector<std::string>& models, int64_t client);

// Seed of client `client`'s private module number `salt` (0: its zoo model; other methods'
// extra modules use 1, 2, ...). Distinct from the server's global-model seed.
uint64_t private_init_seed(uint64_t run_seed, int64_t client, uint64_t salt = 0);

// True when `state` holds any tensor under `prefix`.
bool has_private(const ClientState& state, const std::string& prefix);
// Copies the module's parameters and buffers into state under `prefix` (deep copies; replaces
// earlier entries with the same names).
void save_private(const torch::nn::Module& m, ClientState& state, const std::string& prefix);
// Loads the module from state under `prefix` (every module tensor must be there with its
// shape; throws fedpp::Error otherwise).
void load_private(torch::nn::Module& m, const ClientState& state, const std::string& prefix);
// The private zoo model `name` kept under `prefix` as an ExportedModel (ClientAlgorithm::
// personal_model), or nullopt when the state has none (the client never trained).
std::optional<ExportedModel> export_private(const std::string& name, const ClientState& state,
                                            const std::string& prefix);

// Names of the tensors of m that head() uses (found by autograd through head() alone); every
// other parameter and buffer belongs to the feature extractor.
std::vector<std::string> head_tensor_names(Model& m);
// m's state split into its feature extractor's tensors and its head's (sharing storage with m).
NamedTensors feature_state(Model& m);
NamedTensors head_state(Model& m);

// Trains all of m's parameters with cross-entropy on ctx's train split (make_sgd(opt), batches
// shuffled by ctx.seed). The fit's client multiply-adds are 3 * m.macs_per_sample() * samples.
TrainStats train_private(Model& m, const ClientContext& ctx, const TrainOptions& opt);
// m evaluated on ctx's own test split, as an evaluate reply (accuracy, loss, num_samples).
Message evaluate_reply(Model& m, const ClientContext& ctx);

// A worker's reusable private models, one instance per zoo name (building a model per fit is
// slow). get() returns the model `name` holding client `client`'s private weights: loaded from
// state under `prefix`, or, on first use, freshly initialised from private_init_seed(run seed,
// client, salt). The returned reference stays owned by the cache and is overwritten by the next
// get() of the same name; call save_private to keep what training changed.
class PrivateModels {
 public:
  PrivateModels(ModelSpec spec, uint64_t run_seed, torch::Device device);
  Model& get(const std::string& name, int64_t client, const ClientState& state,
             const std::string& prefix, uint64_t salt = 0);

 private:
  ModelSpec spec_;
  uint64_t run_seed_;
  torch::Device device_;
  std::map<std::string, ModelPtr> models_;
};

}  // namespace fedpp
