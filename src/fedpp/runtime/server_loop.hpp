// The server side of a round, shared by the simulation and the gRPC server, so that both
// produce the same numbers and the same bytes for the same config and seed:
//
//   auto tasks = loop.begin_round(r);          // sampled clients and their encoded messages
//   loop.accept_reply(client, bytes);          // for each reply that arrives (any order)
//   Row row = loop.end_round();                // aggregate (replies sorted by client id)
//   if (loop.eval_due(r)) {                    // global and personalised evaluation
//     auto ev = loop.begin_eval(r);  loop.accept_eval(client, bytes) ...;  loop.end_eval(&row);
//   }
//   loop.record(row);
//
// It owns the ServerAlgorithm, the codec pipelines and the results folder. Replies that fail to
// decode, are not finite, or come from a client that was not asked are rejected with a reason
// (and left out of aggregation), and so are replies carrying a tensor of the same name as one
// the client was sent but of another shape, replies that would decode to more than
// deploy.max_decoded_bytes (both checked before any payload is expanded), replies with a metric
// that is not finite or whose name is not [A-Za-z0-9_.]{1,64}, and replies whose num_samples is
// not a whole number between 0 and the client's training-set size (when the setup knows it).
#pragma once
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "fedpp/codec/codec.hpp"
#include "fedpp/core/config.hpp"
#include "fedpp/data/dataset.hpp"
#include "fedpp/fl/algorithm.hpp"
#include "fedpp/report/run_writer.hpp"
#include "fedpp/runtime/fleet.hpp"

namespace fedpp {

// Run-level settings both runtimes read (keys: seed, rounds, algorithm.name,
// sampling.fraction, sampling.over_select, sampling.deadline_s, eval.every, eval.personalized,
// output.dir, output.quiet, output.progress_s, output.save_model_every, output.save_client_models,
// output.checkpoint_every, deploy.max_decoded_bytes, codec.down.*, codec.up.*, runtime.device).
struct RunOptions {
  uint64_t seed = 1;
  int64_t rounds = 10;
  double fraction = 1.0;
  // Over-selection and deadline (runtime/fleet.hpp): sample ceil(over_select * target) clients
  // and keep the first `target` replies; drop replies later than deadline_s (0 = none).
  double over_select = 1.0;
  double deadline_s = 0.0;
  int64_t eval_every = 1;
  bool personalized = false;
  std::string output_dir;
  bool quiet = false;
  // output.progress_s: a round whose training takes longer than this prints a progress line
  // (clients trained of sampled, samples/s) every this many seconds (0 = never; off when quiet).
  double progress_s = 5.0;
  // With output.dir: the global model (where the method has one) is written as
  // global_model.pt after the last round, and as global_model_round<r>.pt every this many
  // rounds (0 = only the final one).
  int64_t save_model_every = 0;
  // output.save_client_models: after the last round every client's personalised model
  // (ClientAlgorithm::personal_model) is written as client_models/client_<id>.pt (simulation:
  // in output.dir; fedpp join: in the client's state folder).
  bool save_client_models = false;
  // output.checkpoint_every: the simulation checkpoints the server's and the clients' state into
  // output.dir/checkpoint every this many rounds, for `fedpp run --resume` (0 = never). fedpp
  // serve checkpoints after every round whatever this says (its clients keep their own state).
  int64_t checkpoint_every = 0;
  // Cap on a reply's decoded size, checked before decoding (deploy.max_decoded_bytes, 1 GiB).
  int64_t max_decoded_bytes = int64_t{1} << 30;
  std::string algorithm;
  CodecSpec down, up;
  torch::Device device = torch::kCPU;
  static RunOptions from_config(const Config& cfg);
};

// Seeds both ends derive for the codec of one message.
uint64_t down_seed(uint64_t run_seed, int64_t round, int64_t client);
uint64_t up_seed(uint64_t run_seed, int64_t round, int64_t client);
uint64_t eval_seed(uint64_t run_seed, int64_t round, int64_t client);
uint64_t fit_seed(uint64_t run_seed, int64_t round, int64_t client);

struct Task {
  int64_t client = 0;
  std::string bytes;  // the encoded Message for this client
};

class ServerLoop {
 public:
  // `test` is the global test set (may be empty when the server holds no data).
  ServerLoop(const Config& cfg, const RunOptions& opt, const AlgorithmInfo& info,
             const AlgorithmSetup& setup, Dataset test);
  ~ServerLoop();

  std::vector<Task> begin_round(int64_t round);
  // Returns "" when accepted, else the reason it was rejected. = add_reply(check_reply(...)).
  std::string accept_reply(int64_t client, const std::string& bytes);

  // accept_reply in two halves, so that a server can decode replies outside its lock:
  // check_reply decodes and validates (the expensive part) and changes nothing: it may run on
  // several threads at once, but not beside begin_round, end_round or add_reply (it reads what
  // the round sent). add_reply records the result (accepted, or rejected with its reason) and
  // returns the reason ("" when accepted); a second reply of the same client is refused.
  struct CheckedReply {
    int64_t client = 0;
    size_t bytes = 0;                // encoded size (the up-link bytes)
    std::optional<Message> message;  // set when accepted
    std::string reason;              // why not, when rejected
  };
  CheckedReply check_reply(int64_t client, const std::string& bytes) const;
  std::string add_reply(CheckedReply reply);
  Row end_round();

  bool eval_due(int64_t round) const;
  // Tasks for personalised evaluation (empty when the method evaluates only globally).
  std::vector<Task> begin_eval(int64_t round);
  // What each client's exported personalised model is built with after `round`: the message
  // personalised evaluation would send it (configure_evaluate, encoded as for evaluation), or
  // "" where the method sends none. One task per client of `clients`, in that order.
  std::vector<Task> export_tasks(int64_t round, const std::vector<int64_t>& clients);
  std::string accept_eval(int64_t client, const std::string& bytes);
  // accept_eval in two halves, with check_reply's threading rules (not beside begin_eval).
  struct CheckedEval {
    int64_t client = 0;
    Row row;             // the client's metrics, when accepted
    std::string reason;  // why not, when rejected
  };
  CheckedEval check_eval(int64_t client, const std::string& bytes) const;
  std::string add_eval(CheckedEval eval);
  // Global evaluation plus the personalised summary, added to `row`.
  void end_eval(Row* row);
  // Adds the round's wall time, appends the row to the results, prints the progress line and
  // returns the completed row.
  Row record(Row row);

  // Opens the results folder and writes config.toml / config.json / partition.json. Resuming
  // after round `resumed_after` (> 0) keeps the per-client and fleet lines of the rounds done.
  void open_results(const std::string& partition_json, int64_t resumed_after = 0);
  // Resuming from a checkpoint: appends the rows of the rounds already done to the results.
  void restore_results(const std::vector<Row>& rows);

  // Deployment: when aggregation throws fedpp::Error (a reply that decodes but does not fit the
  // method, e.g. a missing tensor), the state is restored, every reply is tried alone, those
  // that fail are rejected and the rest aggregated, so that a bad reply cannot stop the server.
  // Off in simulation, where such an error is a bug that must surface.
  void set_tolerate_bad_replies(bool on) { tolerant_ = on; }

  // Simulation: a device fleet (runtime/fleet.hpp). Only online clients are sampled, and
  // end_round() closes the round on the simulated clock: replies that arrive after the target
  // count or the deadline are dropped before aggregation (and, with an availability trace,
  // those whose device goes offline before their reply arrives), and the row gains the columns
  // available, dropped, sim_round_s and sim_time_s. Without a fleet (nullptr) none of this.
  void set_fleet(std::shared_ptr<const Fleet> fleet) { fleet_ = std::move(fleet); }
  // How many replies a round wants: max(1, round(fraction * clients)). With over_select > 1
  // more clients than this are sampled.
  int64_t target_replies() const;

  ServerAlgorithm& algorithm() { return *server_; }
  const RunOptions& options() const { return opt_; }
  int64_t current_round() const { return round_; }
  const std::vector<int64_t>& sampled() const { return sampled_; }

 private:
  Config cfg_;
  RunOptions opt_;
  AlgorithmSetup setup_;
  Dataset test_;
  Pipeline down_, up_;
  std::unique_ptr<ServerAlgorithm> server_;
  std::unique_ptr<RunWriter> writer_;
  bool tolerant_ = false;
  std::shared_ptr<const Fleet> fleet_;
  double sim_time_s_ = 0;   // simulated seconds since the run started (with a fleet)
  double wait_s_ = 0;       // this round: simulated seconds waited for a client to come online
  int64_t available_ = 0;   // clients online this round (with a fleet)

  // Aggregates `ok`; in tolerant mode drops (and rejects) the replies aggregation fails on.
  void aggregate(std::vector<Reply>* ok);

  int64_t round_ = 0;
  std::chrono::steady_clock::time_point t0_;
  std::vector<int64_t> sampled_;
  std::map<int64_t, Message> sent_;       // what each sampled client was sent (exact, before encoding)
  std::map<int64_t, size_t> sent_bytes_;
  std::map<int64_t, Reply> replies_;
  std::map<int64_t, size_t> reply_bytes_;
  std::map<int64_t, std::string> rejected_;
  std::map<int64_t, size_t> eval_sent_bytes_;
  std::map<int64_t, Row> evals_;
};

// The client side of a round: decodes a task, runs the ClientAlgorithm with the client's state
// and encodes the reply. Used by the simulation's workers and by `fedpp join`.
class ClientRunner {
 public:
  ClientRunner(const RunOptions& opt, std::unique_ptr<ClientAlgorithm> algo);
  std::string fit(int64_t round, int64_t client, const std::string& task_bytes,
                  const ClientData& data, ClientState* state);
  // fit() for a deployed client: when local training fails with fedpp::Error (e.g. a
  // non-finite loss), the reply reports the failure (config "fit_error", no tensors) so that
  // the server counts it among the round's rejected replies and the client carries on; *state
  // is then left as it was. Set *failed to whether that happened.
  std::string fit_or_report(int64_t round, int64_t client, const std::string& task_bytes,
                            const ClientData& data, ClientState* state, bool* failed);
  std::string evaluate(int64_t round, int64_t client, const std::string& task_bytes,
                       const ClientData& data, ClientState* state);
  // Writes the client's personalised model (ClientAlgorithm::personal_model, built with the
  // decoded `task_bytes` of an export task of `round`, or an empty message when "") as
  // <dir>/client_<id>.pt; returns its index entry as JSON text ({"model": zoo model or
  // composite name, plus the composite's parts}), or "" when the method keeps none.
  std::string save_personal_model(int64_t round, int64_t client, const std::string& task_bytes,
                                  const ClientState& state, const std::string& dir) const;

 private:
  RunOptions opt_;
  Pipeline up_;
  std::unique_ptr<ClientAlgorithm> algo_;
};

}  // namespace fedpp
