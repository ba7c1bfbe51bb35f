// Where the simulation keeps each client's private state between rounds: in memory, or spilled
// to one file per client (runtime.state = "disk") so that many clients with private models fit.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

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
// Files <dir>/client_<id>.state in the lossless wire format.
std::unique_ptr<StateStore> make_disk_store(const std::string& dir);

}  // namespace fedpp
