// Server checkpoints for `fedpp serve --resume`. After every completed round the server writes,
// into its checkpoint folder (deploy.checkpoint_dir, default <output.dir>/checkpoint):
//   state_<round>.bin   ServerAlgorithm::save_state() in the lossless wire format
//   checkpoint.json     the round, run id, run fingerprint, name of the state file and the
//                       results rows so far; written last (temp file + rename), so a crash at any
//                       moment leaves the previous complete checkpoint in place.
// Older state files are removed once the new checkpoint.json is in place.
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
};

void write_checkpoint(const std::string& dir, const Checkpoint& c);
// nullopt when `dir` holds no checkpoint; throws fedpp::Error naming the file when it is corrupt.
std::optional<Checkpoint> read_checkpoint(const std::string& dir);

}  // namespace fedpp
