// The deployment server (`fedpp serve`): runs the rounds of ServerLoop, the same round logic as
// the simulation, behind the gRPC service Federation (proto/fedpp.proto), so that the same config
// and seed give the same results in both runtimes.
//
// A round: the server samples clients exactly as the simulation does, publishes one task per
// sampled client and waits. Clients long-poll for their own task (Poll), download it in chunks
// (FetchTask) and stream the reply back (SendReply); a task no larger than deploy.chunk_bytes
// and the client's PollRequest.max_inline_bytes comes inside the poll's answer instead, saving
// the FetchTask call (at most 64 MiB of inlined tasks are held in answers at a time, each twice
// until sent; past that, tasks are fetched). The round closes when every sampled client
// has answered, or, once deploy.round_timeout_s has passed, as soon as deploy.min_replies
// replies were accepted. With fewer than min_replies at the deadline the server keeps waiting
// (clients that reconnect get their task again) and logs a warning every round_timeout_s; stop
// it and `--resume` later, or lower deploy.min_replies. With sampling.over_select > 1 the
// server asks that many times the target count and closes the round at the target-th accepted
// reply; with sampling.deadline_s > 0 it closes the round that many seconds after it opened,
// with whatever has arrived by then, once at least one reply (deploy.min_replies when set) is
// in (the rules of the simulated fleet, runtime/fleet.hpp, in real time; the row's `dropped`
// counts the asked clients cut off). Replies arriving after their round closed
// are ignored. After every round the server checkpoints (checkpoint.hpp).
//
// Threads: Poll runs on gRPC's callback API, so a waiting long poll is a parked call, not a
// blocked thread (one parked poll per client; a newer one answers the older WAIT); one timer
// thread answers polls whose wait has ended. Join, FetchTask and SendReply are synchronous and
// hold a thread only while they move bytes or decode. 1,000 waiting clients: bench_deploy
// --idle-clients (bench/README.md).
//
// Security: TLS with deploy.tls_cert / deploy.tls_key (mutual TLS when deploy.tls_client_ca is
// set) and a token per client, from deploy.tokens_file (lines "client_id token") or derived
// from deploy.token_secret (derive_token). A call without a valid (client id, token) pair gets
// PERMISSION_DENIED; a client is only ever handed its own tasks. A client has at most one reply
// stream open at a time; replies are decoded outside the server's lock, against the cap
// deploy.max_decoded_bytes, so one client's large reply does not stall the others.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "fedpp/core/config.hpp"
#include "fedpp/report/run_writer.hpp"
#include "fedpp/runtime/grpc_auth.hpp"

namespace fedpp {

// deploy.* keys; both `serve` and `join` read all of them (so both validate the section).
struct DeployOptions {
  std::string listen = "0.0.0.0:50051";   // deploy.listen (serve --listen overrides)
  double round_timeout_s = 600;           // deploy.round_timeout_s
  int64_t min_replies = 0;                // deploy.min_replies; 0: every sampled client
  int64_t max_message_bytes = int64_t{2} << 30;  // deploy.max_message_bytes (whole message)
  int64_t chunk_bytes = int64_t{1} << 20;  // deploy.chunk_bytes (one gRPC message)
  // deploy.max_inflight_bytes: the most reply bytes the server receives at once, summed over
  // the open reply streams by their announced sizes; a stream past it is told to retry (one
  // stream is always admitted). With max_message_bytes it bounds the server's receive memory.
  int64_t max_inflight_bytes = int64_t{2} << 30;
  // deploy.max_client_samples: with data.client_dirs the server does not know what each client
  // holds; a reply's num_samples (its weight in averaging) may not exceed this.
  int64_t max_client_samples = 1000000;
  double poll_s = 20;                     // deploy.poll_s: longest long-poll
  double client_give_up_s = 600;          // deploy.client_give_up_s: client retries this long
  std::string checkpoint_dir;             // deploy.checkpoint_dir (default <output.dir>/checkpoint)
  std::string tls_cert, tls_key, tls_client_ca;  // deploy.tls_* (PEM files)
  std::string tokens_file, token_secret;  // deploy.tokens_file, deploy.token_secret
  static DeployOptions from_config(const Config& cfg);
};

// Metadata keys that every call carries (see proto/fedpp.proto).
inline constexpr char kClientIdHeader[] = "fedpp-client-id";
inline constexpr char kTokenHeader[] = "fedpp-token";

// read_named_file and derive_token: runtime/grpc_auth.hpp.

struct ServeOptions {
  std::string listen;             // overrides deploy.listen when not empty
  bool resume = false;            // continue from the checkpoint
  int64_t crash_at_round = 0;     // testing: SIGKILL itself once this round has a reply
};

class FederationServer {
 public:
  // Loads the data (the global test set and the partition summary), builds the algorithm,
  // validates every key and starts listening. Throws fedpp::Error for a bad config, a port
  // that cannot be bound, unreadable TLS files or tokens, or (--resume) a missing checkpoint.
  FederationServer(Config cfg, const ServeOptions& opt);
  ~FederationServer();

  // The bound port (useful with a listen address ending in ":0").
  int port() const;
  // Runs the remaining rounds, then tells the clients that the run is done (waiting up to
  // deploy.poll_s for them to hear it) and stops listening. Returns every round's row.
  std::vector<Row> run();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace fedpp
