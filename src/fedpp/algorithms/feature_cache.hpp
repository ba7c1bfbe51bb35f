// FeatureCache — FedGKT's server-side store of each client's latest upload (feature maps H,
// client logits, labels, sample indices, and optionally test feature maps and labels).
//
// put() replaces a client's entry (never accumulates). Feature maps are kept in the cache dtype
// (float16 halves the memory; float32 keeps them exactly as received); logits stay float32 and
// labels / indices int64. The in-memory total is bounded by `max_bytes`: when a put() exceeds
// it, the entries put longest ago (the new one last) are written to files in the spill folder
// (torch::save, bit-exact) and dropped from memory until the total fits; get() reads a spilled
// entry back without keeping it. With max_bytes = 0 every entry lives on disk.
// The spill folder is `spill_dir`, or a fresh folder under the system temp dir when that is
// empty; the cache deletes the files it wrote (and the folder, when it created it) on
// destruction. Not thread-safe: the server uses it from one thread.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace fedpp {

struct CacheEntry {
  torch::Tensor features;       // [n, C_h, H, W], cache dtype
  torch::Tensor client_logits;  // [n, classes], float32
  torch::Tensor labels;         // [n], int64
  torch::Tensor idx;            // [n], int64: rows of the client's train split
  torch::Tensor test_features;  // [m, C_h, H, W] or empty [0]
  torch::Tensor test_labels;    // [m] or empty [0]
  int64_t bytes() const;        // payload bytes of all tensors
};

class FeatureCache {
 public:
  // dtype: torch::kHalf or torch::kFloat. Throws fedpp::Error for another dtype.
  FeatureCache(torch::ScalarType dtype, int64_t max_bytes, std::string spill_dir = "");
  ~FeatureCache();
  FeatureCache(const FeatureCache&) = delete;
  FeatureCache& operator=(const FeatureCache&) = delete;

  // Stores `e` as client `client`'s entry (converting feature maps to the cache dtype and
  // making every tensor contiguous), replacing any earlier one; then spills to fit max_bytes.
  void put(int64_t client, CacheEntry e);
  // The entry (from memory or read back from disk). Throws fedpp::Error when absent.
  CacheEntry get(int64_t client) const;
  bool contains(int64_t client) const;
  std::vector<int64_t> clients() const;  // ascending
  size_t size() const { return where_.size(); }

  int64_t bytes_in_memory() const;
  int64_t bytes_on_disk() const;      // payload bytes of the spilled entries
  int64_t spilled_entries() const;
  torch::ScalarType dtype() const { return dtype_; }

 private:
  std::string file_of(int64_t client) const;
  void ensure_dir();  // creates the spill folder (a fresh temp one when none was given)
  void spill(int64_t client);
  void enforce_budget();

  torch::ScalarType dtype_;
  int64_t max_bytes_;
  std::string dir_;
  bool own_dir_ = false;
  std::map<int64_t, CacheEntry> memory_;
  std::map<int64_t, int64_t> disk_bytes_;   // client -> payload bytes of its file
  std::map<int64_t, bool> where_;           // client -> true when in memory
  std::vector<int64_t> put_order_;          // oldest first
};

}  // namespace fedpp
