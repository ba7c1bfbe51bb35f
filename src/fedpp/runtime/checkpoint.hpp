// Checkpoints for `fedpp serve --resume` and `fedpp run --resume`. After a completed round (serve:
// every round, into deploy.checkpoint_dir, default <output.dir>/checkpoint; the simulation: every
// output.checkpoint_every rounds, into <output.dir>/checkpoint) the folder gets:
//   state_<round>.bin   ServerAlgorithm::save_state() in the lossless wire format
//   clients_<round>/    simulation only: each client's private state (client_<id>.state, the
//                       lossless wire format; written by the processes that host the clients
//                       before checkpoint.json, so absent files mean empty states)
//   checkpoint.json     the round, run id, run fingerprint, names of the state file and client
//                       folder and the results rows so far; written last (temp file + rename), so
//                       a crash at any moment leaves the previous complete checkpoint in place.
// Older state files and client folders are removed once the new checkpoint.json is in place.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "fedpp/fl/message.hpp"
#include "fedpp/report/run_writer.hpp"

namespace fedpp {

struct Checkpoint {
  int64_t round = 0;        // last completed round (1-based)
  std::string run_id;       // kept across resumes; clients key their private state by it
  std::string fingerprint;  // what must match to resume (seed, algorithm, clients, rounds)
  Message state;            // the server algorithm's state after `round`
  std::vector<Row> rows;    // results rows of rounds 1..round, timing columns included
  std::string clients;      // folder (in the checkpoint folder) of the clients' states; "" none
};

void write_checkpoint(const std::string& dir, const Checkpoint& c);
// nullopt when `dir` holds no checkpoint; throws fedpp::Error naming the file when it is corrupt.
std::optional<Checkpoint> read_checkpoint(const std::string& dir);

}  // namespace fedpp
