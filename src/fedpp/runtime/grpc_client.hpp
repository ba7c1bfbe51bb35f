// The deployment client (`fedpp join`): one federated client, its data and its private state,
// taking part in a run that `fedpp serve` drives (grpc_server.hpp).
//
// The client loads its own split of the data as the config describes it (every client computes
// the same partition from data.* and the seed, and takes clients[client_id]; per-client data
// files are a later addition), long-polls the server for its tasks, runs them through the same
// ClientRunner as the simulation and streams the replies back. Its private state (ClientState)
// never leaves the process: it is kept on disk under <state_dir>/<run id>/round_<r>/, one
// version per round, so that a restarted client keeps it and a server that resumes from an
// earlier round gets the same replies again. On UNAVAILABLE (server down or restarting) it
// retries with backoff (0.1 s doubling to 5 s) for up to deploy.client_give_up_s, then fails.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "fedpp/core/config.hpp"
#include "fedpp/data/dataset.hpp"

namespace fedpp {

struct JoinOptions {
  std::string server;           // host:port of `fedpp serve`
  int64_t client_id = -1;
  std::string token;
  std::string state_dir;        // default: fedpp_state/client_<id>
  std::string tls_ca;           // PEM of the CA (or self-signed cert) of the server: enables TLS
  std::string tls_cert, tls_key;  // the client's certificate and key (mutual TLS)
  std::string tls_server_name;  // name to check the server certificate against, when not the
                                // host in `server`
  int64_t crash_at_round = 0;   // testing: SIGKILL itself after fetching this round's fit task
  double delay_s = 0;           // testing: a slow device, waits this long after each fit
  std::string data_dir;         // this client's own data folder (needs data.client_dirs); empty:
                                // the folder data.client_dirs names for this client
};

// What one client did: tasks run and bytes moved (message bytes, as the wire carries them), and
// the seconds spent downloading tasks and uploading replies, in all and per transfer (in order).
// Tasks that came inside a poll's answer (inline_tasks) count in bytes_down, not in fetch_s or
// fetches.
struct ClientStats {
  struct Transfer {
    int64_t bytes = 0;
    double s = 0;
  };
  int64_t fits = 0, evals = 0, inline_tasks = 0;
  int64_t bytes_down = 0, bytes_up = 0;
  double fetch_s = 0, send_s = 0;
  std::vector<Transfer> fetches, sends;  // the successful ones
};

class FederationClient {
 public:
  // Loads the data from the config (or takes `data`, already partitioned from the same config)
  // and builds the client algorithm. Throws fedpp::Error for a bad config or client id.
  FederationClient(Config cfg, JoinOptions opt,
                   std::shared_ptr<const FederatedData> data = nullptr);
  ~FederationClient();
  // Takes part until the server says the run is done. Throws fedpp::Error when the server
  // refuses this client (bad token, other config) or stays unreachable for too long.
  ClientStats run();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace fedpp
