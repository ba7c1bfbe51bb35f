// Where the simulation keeps each client's private state between rounds: in memory, or spilled
// to one file per client (runtime.state = "disk") so that many clients with private models fit.
// Threading: load and save may be called from several worker threads at once, for different
// clients (the memory store locks; the disk store writes each client's file alone, atomically).
// Ownership: load returns a copy (tensors share storage with the stored state until replaced);
// save takes the state. Errors: fedpp::Error naming the file when a disk write or read fails.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "fedpp/core/files.hpp"
#include "fedpp/fl/algorithm.hpp"

namespace fedpp {

class StateStore {
 public:
  virtual ~StateStore() = default;
  virtual ClientState load(int64_t client) = 0;   // empty state on first use
  virtual void save(int64_t client, ClientState state) = 0;
  virtual int64_t bytes() const = 0;              // bytes held (memory or disk)
};

std::unique_ptr<StateStore> make_memory_store(int64_t num_clients);
// Files <dir>/client_<id>.state in the lossless wire format, each written whole (temp file and
// rename). `durability` (core/files.hpp): kPowerLoss for state a restart reads (checkpoints, a
// deployed client's state), kProcessCrash for the simulation's spill (runtime.state = "disk"),
// which no restart reads and which an fsync per client per round (~2 ms here) would only slow.
std::unique_ptr<StateStore> make_disk_store(const std::string& dir,
                                            Durability durability = Durability::kPowerLoss);

}  // namespace fedpp
