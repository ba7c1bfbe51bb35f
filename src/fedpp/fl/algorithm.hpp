// The algorithm API: what every federated method implements, and the only thing the runtimes
// (simulation and gRPC deployment) know about methods.
//
// A round, as both runtimes drive it:
//   1. the runtime samples clients; for each, server.configure_fit(round, client) -> Message;
//   2. each client runs ClientAlgorithm::fit(message, context) -> reply Message
//      (reply.metrics["num_samples"] is required: the client's training-sample count);
//   3. server.aggregate(round, replies) with the replies that arrived, sorted by client id;
//   4. every eval_every rounds: server.evaluate(round) (global test set, may return nothing),
//      and, where server.configure_evaluate returns a message, ClientAlgorithm::evaluate on
//      each client's own test split (personalised evaluation).
// Messages cross through the codec pipeline and, in deployment, the network; an algorithm never
// sees transport. Per-client private state (ClientState) lives with the client: the runtime
// keeps it between rounds (in memory or on disk) and hands it back in the next context.
//
// Threading: a ServerAlgorithm is called by one thread at a time (the runtime's round thread).
// A ClientAlgorithm object serves many clients, one call at a time: the simulation builds one
// per worker thread and a deployed client one per process, so an implementation may keep
// scratch modules (caches) but nothing client-specific between calls; what a client must keep
// goes into its ClientState. Calls may run on any thread; LibTorch's intra-op threads are set by
// the runtime (runtime/threads.hpp).
// Errors: throw fedpp::Error for anything a user or a peer can cause (a config value, a message
// that does not fit the method, a non-finite loss). The simulation stops the run with it; the
// gRPC server rejects the offending reply (counted in `rejected`, with the reason) and a deployed
// client reports the failed fit and carries on. Any other exception is a bug in fedpp.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "fedpp/core/config.hpp"
#include "fedpp/core/named_tensors.hpp"
#include "fedpp/data/dataset.hpp"
#include "fedpp/fl/message.hpp"
#include "fedpp/models/model.hpp"

namespace fedpp {

// A client's persistent private state: private model weights, optimiser buffers, counters.
// Empty on the client's first round.
struct ClientState {
  NamedTensors tensors;
  std::map<std::string, double> scalars;
  bool empty() const { return tensors.empty() && scalars.empty(); }
};

struct ClientContext {
  int64_t client_id = 0;
  int64_t round = 0;
  const ClientData* data = nullptr;  // the client's train and test splits (not owned)
  ClientState* state = nullptr;      // persistent private state (not owned; read and write)
  uint64_t seed = 0;                 // derived from (run seed, round, client)
  torch::Device device = torch::kCPU;
};

struct Reply {
  int64_t client_id = 0;
  Message message;
};

// What both halves are built from. Components read all their config keys in their
// constructors (so that unknown keys are caught before the run starts).
struct AlgorithmSetup {
  Config cfg;
  ModelSpec spec;             // input shape and class count of the data
  int64_t num_clients = 0;
  // Training samples of every client (the partition), where the process knows it; the server
  // refuses a reply claiming more. Empty = unknown.
  std::vector<int64_t> client_train_sizes;
  uint64_t seed = 0;          // run seed
  torch::Device device = torch::kCPU;
};

// A trained model as a state dict: `model` names the zoo model (model.name) whose module_state()
// has exactly these tensor names and shapes, or a composite that `parts` describes (e.g. FedMoE:
// model "fedmoe" with its experts, gate and mix; docs/models.md gives the PyTorch module).
struct ExportedModel {
  std::string model;
  NamedTensors tensors;
  std::map<std::string, std::string> parts;  // composite models only: what builds the module
};

// A ClientAlgorithm serves many clients, one at a time: everything client-specific lives in the
// context (data, private state). The simulation builds one instance per worker thread.
// Reply metrics the runtimes understand: "num_samples" (required), "client_macs" (multiply-adds
// this fit cost the client), "train_loss"; every other numeric metric is also averaged over the
// replies (a plain mean over clients) into the round's results as "fit_<name>".
class ClientAlgorithm {
 public:
  virtual ~ClientAlgorithm() = default;
  // Local training. Returns the update to send up; metrics must include "num_samples".
  virtual Message fit(const Message& in, ClientContext& ctx) = 0;
  // Personalised evaluation on ctx.data->test; metrics "accuracy", "loss", "num_samples".
  virtual Message evaluate(const Message& in, ClientContext& ctx) = 0;
  // The client's personalised model, built from its private state and `shared`, as a state dict
  // (written as client_models/client_<id>.pt with output.save_client_models), or nullopt when
  // the method keeps no private model of its own or the client never trained. `shared` is what
  // the server sends this client for evaluation after the last round (configure_evaluate; a
  // deployed client: the last evaluation message it received; empty when there is none): the
  // server's part of the model, e.g. FedMoE's global expert.
  virtual std::optional<ExportedModel> personal_model(int64_t client_id, const ClientState& state,
                                                      const Message& shared) const {
    (void)client_id; (void)state; (void)shared;
    return std::nullopt;
  }
};

// Client id -> the metrics of its personalised evaluation reply ("accuracy", "loss",
// "num_samples", ...).
using ClientEvals = std::map<int64_t, std::map<std::string, double>>;

// The default summary of a round's personalised evaluations: personal_accuracy_mean, _min and
// _max over the clients' "accuracy", and personal_<name>_mean of every other metric but
// num_samples and client (a plain mean over clients). `evals` must not be empty.
std::map<std::string, double> summarise_personal(const ClientEvals& evals);

class ServerAlgorithm {
 public:
  virtual ~ServerAlgorithm() = default;
  // Message for one sampled client (the global model, a sub-model, its own logits, ...).
  virtual Message configure_fit(int64_t round, int64_t client_id) = 0;
  // The tensors, by name and shape, that a reply to the fit message `sent` must carry: exactly
  // these, none missing, none other (the runtime checks the reply's headers before expanding any
  // payload, and rejects a reply that differs). nullopt (the default): the replies' tensors
  // depend on the client's data (e.g. FedGKT's feature maps); then a tensor named like a sent
  // one must have its shape, and only the runtime's size caps bound the rest. Called from
  // several threads at once while a round is open: it must read nothing but `sent`.
  virtual std::optional<NamedTensors> reply_schema(int64_t client_id, const Message& sent) const {
    (void)client_id; (void)sent;
    return std::nullopt;
  }
  // Folds the replies of one round into the global state. Replies are sorted by client id;
  // some sampled clients may be missing (deployment: late or vanished clients).
  virtual void aggregate(int64_t round, const std::vector<Reply>& replies) = 0;
  // Metrics of the last aggregate() call, added to the round's results as they are (e.g.
  // "server_macs": multiply-adds the server spent training). Empty by default.
  virtual std::map<std::string, double> aggregate_metrics() const { return {}; }
  // Global-model evaluation on `test` (accuracy, loss); empty map when the method has no
  // global model.
  virtual std::map<std::string, double> evaluate(int64_t round, const Dataset& test) {
    (void)round; (void)test;
    return {};
  }
  // The round's personalised results from the clients' evaluation replies (called once per
  // evaluated round, when at least one client answered; the keys go into the round's results
  // as they are). Default: summarise_personal. A method may add or replace summaries (e.g. a
  // median, or a sample-weighted mean).
  virtual std::map<std::string, double> aggregate_evaluate(int64_t round,
                                                           const ClientEvals& evals) const {
    (void)round;
    return summarise_personal(evals);
  }
  // Message for personalised evaluation of one client, or nullopt when the method evaluates
  // only globally.
  virtual std::optional<Message> configure_evaluate(int64_t round, int64_t client_id) {
    (void)round; (void)client_id;
    return std::nullopt;
  }
  // The method's global model, written to the results folder as global_model.pt (a PyTorch
  // state dict), or nullopt when the method has no single global model (personalised methods).
  virtual std::optional<ExportedModel> global_model() const { return std::nullopt; }
  // Checkpointing: the whole server state as tensors (+ scalars through Message metrics).
  virtual Message save_state() const = 0;
  virtual void load_state(const Message& state) = 0;
};

using ServerFactory = std::function<std::unique_ptr<ServerAlgorithm>(const AlgorithmSetup&)>;
using ClientFactory = std::function<std::unique_ptr<ClientAlgorithm>(const AlgorithmSetup&)>;

struct AlgorithmInfo {
  std::string name;
  std::string description;
  bool personalized = false;  // evaluated on clients' own test splits
  ServerFactory make_server;
  ClientFactory make_client;
};

// The registry (algorithms/registry.cpp lists every built-in algorithm: one line each).
// Throws fedpp::Error listing the known names when `name` is unknown.
const AlgorithmInfo& find_algorithm(const std::string& name);
std::vector<std::string> algorithm_names();
// Adds an algorithm defined outside fedpp (a program linking fedpp::fedpp) to the registry, so
// configs can name it. Throws fedpp::Error when the name is taken.
void register_algorithm(AlgorithmInfo info);

}  // namespace fedpp
