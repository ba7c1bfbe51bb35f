// Durable files: what fedpp writes (results, checkpoints, client state, model files) either
// reaches the disk whole or fails with one clear error; a crash or a full disk never leaves a
// half-written file under the final name.
// No torch here. Every function throws fedpp::Error naming the path, the system's reason
// (e.g. "No space left on device") and `hint` (what to check, e.g. the config key of the folder).
#pragma once
#include <cstdint>
#include <string>

namespace fedpp {

// Whether a write must survive a power loss (fsync of the file and its folder, ~2 ms on this
// machine's disk) or only a crash of the process (the page cache keeps it): scratch files that
// a restart never reads, e.g. the simulation's spilled client state, need no fsync.
enum class Durability { kPowerLoss, kProcessCrash };

// Writes `bytes` to "<path>.tmp", renames it to `path` and, for kPowerLoss, fsyncs the file
// before and the folder after the rename. On failure the temp file is removed and `path` keeps
// its old content.
void write_file_atomic(const std::string& path, const std::string& bytes,
                       const std::string& hint = "",
                       Durability durability = Durability::kPowerLoss);

// Reads a user-named input file (a fleet profile, an assignment, a trace) whole. Anything that
// is not a regular file (a FIFO, a device) or is larger than `max_bytes` is one error naming
// `what`, the path and the limit, so that a wrong path cannot hang the run or exhaust memory.
std::string read_input_file(const std::string& path, const std::string& what, uint64_t max_bytes);

// Appends `text` to `path` (created if missing) and flushes it to the disk (fsync).
void append_file(const std::string& path, const std::string& text, const std::string& hint = "");

}  // namespace fedpp
