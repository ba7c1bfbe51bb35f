// Where a simulation's clients run. The Simulation drives rounds through its ServerLoop and hands
// each phase's tasks (client id + encoded message) to a ClientHost, which returns the encoded
// replies in task order. ClientPool runs them on this process's worker threads; the MPI runtime
// (runtime/mpi.hpp) runs them on other processes, each with a ClientPool of its own. Because a
// reply depends only on (round, client, task bytes, the client's data and private state), where
// a client runs never changes a number.
//
// Threading: a host is driven by one thread (the simulation's); ClientPool spreads the tasks of
// one call over its workers. Errors: the first fedpp::Error a client throws is rethrown by the
// call, after every worker stopped.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "fedpp/core/config.hpp"
#include "fedpp/data/dataset.hpp"
#include "fedpp/fl/algorithm.hpp"
#include "fedpp/runtime/server_loop.hpp"
#include "fedpp/runtime/state_store.hpp"

namespace fedpp {

class ClientHost {
 public:
  virtual ~ClientHost() = default;
  // Local training: one reply per task, in task order. The tasks are the host's: it may free
  // each one's bytes as soon as its client has read them (ClientPool does, so that a round never
  // holds every client's encoded task beside every encoded reply).
  virtual std::vector<std::string> fit(int64_t round, std::vector<Task> tasks) = 0;
  // Personalised evaluation: one answer per task, "" for a client without test data.
  virtual std::vector<std::string> evaluate(int64_t round, const std::vector<Task>& tasks) = 0;
  // Writes each task's client's personalised model as <dir>/client_<id>.pt, built with the task's
  // message (ServerLoop::export_tasks of `round`); returns its index entry (JSON text) per task,
  // "" where the method keeps none.
  virtual std::vector<std::string> save_models(int64_t round, const std::vector<Task>& tasks,
                                               const std::string& dir) = 0;
  // Checkpointing (runtime/checkpoint.hpp): writes the private state of every client it hosts
  // that has one as <dir>/client_<id>.state, and reads them back (a client without a file gets
  // an empty state). Throws fedpp::Error naming the file on a write or read failure.
  virtual void save_states(const std::string& dir) = 0;
  virtual void load_states(const std::string& dir) = 0;
};

// Thread settings of every runtime (the simulation's pool, an MPI client rank, fedpp serve's
// aggregation, fedpp join's training), read in this one place.
struct ClientPoolOptions {
  int64_t workers = 2;  // client threads (runtime.workers)
  int64_t threads = 1;  // intra-op threads per worker (runtime.threads)
  static ClientPoolOptions from_config(const Config& cfg);
};

// Clients on this process's worker threads, their private state in a StateStore (runtime.state:
// memory, or disk under runtime.state_dir or output.dir/client_state).
class ClientPool final : public ClientHost {
 public:
  // Reads runtime.workers, runtime.threads, runtime.state and runtime.state_dir; builds one
  // ClientAlgorithm per worker. `data` is shared, not copied. `hosted`: the clients whose state
  // save_states / load_states cover (an MPI rank's share); empty = all of them.
  ClientPool(const Config& cfg, const RunOptions& opt, const AlgorithmSetup& setup,
             std::shared_ptr<const FederatedData> data, std::vector<int64_t> hosted = {});
  ~ClientPool() override;

  std::vector<std::string> fit(int64_t round, std::vector<Task> tasks) override;
  std::vector<std::string> evaluate(int64_t round, const std::vector<Task>& tasks) override;
  std::vector<std::string> save_models(int64_t round, const std::vector<Task>& tasks,
                                       const std::string& dir) override;
  void save_states(const std::string& dir) override;
  void load_states(const std::string& dir) override;

  const ClientPoolOptions& options() const { return pool_; }
  StateStore& states() { return *states_; }

 private:
  // Runs fn(runner, i) for i in [0, n) on the workers; rethrows the first error.
  template <typename Fn>
  void parallel_for(size_t n, Fn&& fn);

  ClientPoolOptions pool_;
  double progress_s_ = 0;  // output.progress_s, 0 when output.quiet
  std::shared_ptr<const FederatedData> data_;
  std::vector<std::unique_ptr<ClientRunner>> runners_;
  std::unique_ptr<StateStore> states_;
  std::vector<int64_t> hosted_;
};

}  // namespace fedpp
