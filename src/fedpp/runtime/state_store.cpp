#include "fedpp/runtime/state_store.hpp"

#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>

#include "fedpp/core/error.hpp"
#include "fedpp/core/files.hpp"
#include "fedpp/fl/wire.hpp"

namespace fedpp {

namespace {

int64_t state_bytes(const ClientState& s) {
  int64_t b = 0;
  for (const auto& [n, t] : s.tensors) b += t.numel() * static_cast<int64_t>(t.element_size());
  return b;
}

class MemoryStore : public StateStore {
 public:
  explicit MemoryStore(int64_t n) : states_(n) {}
  ClientState load(int64_t c) override {
    std::lock_guard<std::mutex> l(mu_);
    return states_.at(c);
  }
  void save(int64_t c, ClientState s) override {
    std::lock_guard<std::mutex> l(mu_);
    states_.at(c) = std::move(s);
  }
  int64_t bytes() const override {
    std::lock_guard<std::mutex> l(mu_);
    int64_t b = 0;
    for (const auto& s : states_) b += state_bytes(s);
    return b;
  }

 private:
  mutable std::mutex mu_;
  std::vector<ClientState> states_;
};

class DiskStore : public StateStore {
 public:
  DiskStore(std::string dir, Durability durability)
      : dir_(std::move(dir)), durability_(durability) {
    std::filesystem::create_directories(dir_);
  }
  std::string path(int64_t c) const { return dir_ + "/client_" + std::to_string(c) + ".state"; }
  ClientState load(int64_t c) override {
    ClientState s;
    std::ifstream in(path(c), std::ios::binary);
    if (!in) return s;
    std::stringstream ss;
    ss << in.rdbuf();
    Message m = decode_message(ss.str(), 0);
    s.tensors = std::move(m.tensors);
    s.scalars = std::move(m.metrics);
    return s;
  }
  void save(int64_t c, ClientState s) override {
    Message m;
    m.tensors = std::move(s.tensors);
    m.metrics = std::move(s.scalars);
    static const Pipeline lossless;
    std::string bytes = encode_message(m, lossless, 0);
    write_file_atomic(path(c), bytes, "check runtime.state_dir and free disk space", durability_);
  }
  int64_t bytes() const override {
    int64_t b = 0;
    for (const auto& e : std::filesystem::directory_iterator(dir_))
      if (e.is_regular_file()) b += static_cast<int64_t>(e.file_size());
    return b;
  }

 private:
  std::string dir_;
  Durability durability_;
};

}  // namespace

std::unique_ptr<StateStore> make_memory_store(int64_t n) {
  return std::make_unique<MemoryStore>(n);
}
std::unique_ptr<StateStore> make_disk_store(const std::string& dir, Durability durability) {
  return std::make_unique<DiskStore>(dir, durability);
}

}  // namespace fedpp
