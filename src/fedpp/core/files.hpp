// Durable files: what fedpp writes (results, checkpoints, client state, model files) either
// reaches the disk whole or fails with one clear error; a crash or a full disk never leaves a
// half-written file under the final name.
// No torch here. Every function throws fedpp::Error naming the path, the system's reason
// (e.g. "No space left on device") and `hint` (what to check, e.g. the config key of the folder).
#pragma once
#include <cstdint>
#include <string>

namespace fedpp {

// Writes `bytes` to "<path>.tmp", flushes and fsyncs it, renames it to `path` and fsyncs the
// folder. On failure the temp file is removed and `path` keeps its old content.
void write_file_atomic(const std::string& path, const std::string& bytes,
                       const std::string& hint = "");

// Reads a user-named input file (a fleet profile, an assignment, a trace) whole. Anything that
// is not a regular file (a FIFO, a device) or is larger than `max_bytes` is one error naming
// `what`, the path and the limit, so that a wrong path cannot hang the run or exhaust memory.
std::string read_input_file(const std::string& path, const std::string& what, uint64_t max_bytes);

// Appends `text` to `path` (created if missing) and flushes it to the disk (fsync).
void append_file(const std::string& path, const std::string& text, const std::string& hint = "");

}  // namespace fedpp
