// Simulation — many virtual clients on one machine (or, through runtime/mpi.hpp, on several
// processes). The server side of each round is the ServerLoop that the gRPC server also uses;
// clients run on a ClientHost (runtime/client_pool.hpp): by default a ClientPool of worker
// threads (one ClientAlgorithm each) with their private state kept between rounds in a
// StateStore. Messages cross as encoded wire bytes, so lossy codecs act and bytes are real.
//
// Checkpoints: with output.checkpoint_every = k, every k-th round (not the last) writes the
// server's state and every client's private state into output.dir/checkpoint
// (runtime/checkpoint.hpp); resume() (`fedpp run CONFIG --resume`) continues from there and gives
// the metrics of a run that was never stopped. A run started without resume() replaces the
// checkpoint of an earlier run in its folder.
//
// Config keys: those of RunOptions (server_loop.hpp), runtime.workers, runtime.threads,
// runtime.state (memory|disk), runtime.state_dir, fleet.* (a simulated device fleet and clock:
// runtime/fleet.hpp), plus the data.*, model.*, train.* and algorithm keys that the components
// read.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "fedpp/codec/codec.hpp"
#include "fedpp/core/config.hpp"
#include "fedpp/data/dataset.hpp"
#include "fedpp/data/partition.hpp"
#include "fedpp/fl/algorithm.hpp"
#include "fedpp/report/run_writer.hpp"
#include "fedpp/runtime/client_pool.hpp"
#include "fedpp/runtime/server_loop.hpp"
#include "fedpp/runtime/state_store.hpp"

namespace fedpp {

// Builds the ClientHost of a simulation once the config, options and setup are known. The host
// must read (or mark used) the runtime.* keys a ClientPool reads, so that they validate.
using ClientHostFactory = std::function<std::unique_ptr<ClientHost>(
    Config& cfg, const RunOptions& opt, const AlgorithmSetup& setup,
    std::shared_ptr<const FederatedData> data)>;

class Simulation {
 public:
  // Loads the data and builds the algorithm from `cfg`; validates every key.
  explicit Simulation(Config cfg);
  // Uses already-loaded data (tests, benchmarks, scripts that run many configs).
  Simulation(Config cfg, std::shared_ptr<const FederatedData> data);
  // Clients on the host `make_host` builds instead of a ClientPool (the MPI runtime).
  Simulation(Config cfg, std::shared_ptr<const FederatedData> data, ClientHostFactory make_host);
  ~Simulation();

  // Continues the run in output.dir from its checkpoint: the server's and clients' state and
  // the rows of the rounds done. Call before any round. Throws fedpp::Error when there is no
  // checkpoint, it is corrupt, or it is of a run with other run-defining keys (named).
  void resume();
  // Runs the remaining rounds; returns the results rows of every round (restored ones included).
  std::vector<Row> run();
  // Runs one round (1-based) and returns its row.
  Row run_round(int64_t round);

  ServerAlgorithm& server() { return loop_->algorithm(); }
  const RunOptions& options() const { return opt_; }
  const FederatedData& data() const { return *data_; }
  // The clients' private state; throws fedpp::Error when the clients run elsewhere (MPI).
  StateStore& states();

 private:
  void build(const ClientHostFactory& make_host);
  // output.save_client_models: every client's personalised model into output.dir/client_models
  // (client_<id>.pt and index.json: client, zoo model, file).
  void save_client_models();
  // Opens the results folder (once, before the first round; resumed_after > 0 when resuming).
  void open_results(int64_t resumed_after);
  // Writes the checkpoint after `round` into checkpoint_dir().
  void checkpoint(int64_t round);
  std::string checkpoint_dir() const { return opt_.output_dir + "/checkpoint"; }

  Config cfg_;
  std::shared_ptr<const FederatedData> data_;
  RunOptions opt_;
  std::unique_ptr<ServerLoop> loop_;
  std::unique_ptr<ClientHost> clients_;
  ClientPool* pool_ = nullptr;  // clients_ when it is a ClientPool
  std::string fingerprint_;     // run_identity with fleet.*: what a resume must match
  bool results_open_ = false;
  int64_t next_round_ = 1;
  std::vector<Row> rows_;       // rows of the rounds done
};

// Loads data.* from the config and partitions it (the seed comes from key `seed`). With
// data.client_dirs (clients with their own data, data/partition.hpp) `only` says whose folders
// this process reads: kAllClients (the simulation), kNoClients (the gRPC server: the global test
// set only) or one client id (a deployed client: its own folder, from `dir` when not empty).
// Without data.client_dirs every process partitions the whole data set, whatever `only` says,
// and a non-empty `dir` is an error (fedpp join --data needs data.client_dirs).
std::shared_ptr<const FederatedData> load_federated_data(const Config& cfg,
                                                         int64_t only = kAllClients,
                                                         const std::string& dir = "");
// The ModelSpec (input shape, classes) of a data set.
ModelSpec spec_of(const FederatedData& data);
// The AlgorithmSetup of a process that holds `data` (the simulation, the gRPC server): config,
// model spec, client count and training-set sizes, run seed and device.
AlgorithmSetup setup_for(const Config& cfg, const RunOptions& opt, const FederatedData& data);

}  // namespace fedpp
