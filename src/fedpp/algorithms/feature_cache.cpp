#include "fedpp/algorithms/feature_cache.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>

#include "fedpp/core/error.hpp"

namespace fedpp {

namespace fs = std::filesystem;

namespace {
int64_t tensor_bytes(const torch::Tensor& t) {
  return t.defined() ? t.numel() * static_cast<int64_t>(t.element_size()) : 0;
}
torch::Tensor or_empty(const torch::Tensor& t, torch::ScalarType dtype) {
  return t.defined() ? t.contiguous() : torch::empty({0}, dtype);
}
}  // namespace

int64_t CacheEntry::bytes() const {
  return tensor_bytes(features) + tensor_bytes(client_logits) + tensor_bytes(labels) +
         tensor_bytes(idx) + tensor_bytes(test_features) + tensor_bytes(test_labels);
}

FeatureCache::FeatureCache(torch::ScalarType dtype, int64_t max_bytes, std::string spill_dir)
    : dtype_(dtype), max_bytes_(max_bytes), dir_(std::move(spill_dir)) {
  FEDPP_CHECK(dtype == torch::kHalf || dtype == torch::kFloat,
              "feature cache dtype must be float16 or float32 (fedgkt.cache_dtype)");
  FEDPP_CHECK(max_bytes >= 0, "fedgkt.cache_max_bytes must be >= 0");
}

FeatureCache::~FeatureCache() {
  std::error_code ec;
  for (const auto& [c, in_memory] : where_)
    if (!in_memory) fs::remove(file_of(c), ec);
  if (own_dir_) fs::remove_all(dir_, ec);
}

std::string FeatureCache::file_of(int64_t client) const {
  return dir_ + "/client_" + std::to_string(client) + ".pt";
}

void FeatureCache::ensure_dir() {
  if (dir_.empty()) {
    static std::atomic<int64_t> counter{0};
    dir_ = (fs::temp_directory_path() / ("fedpp_gkt_cache_" + std::to_string(::getpid()) + "_" +
                                         std::to_string(counter++)))
               .string();
    own_dir_ = true;
  }
  std::error_code ec;
  fs::create_directories(dir_, ec);
  FEDPP_CHECK(!ec, "cannot create the FedGKT cache folder '" + dir_ + "' (" + ec.message() +
                       "); set fedgkt.cache_dir to a writable folder");
}

void FeatureCache::put(int64_t client, CacheEntry e) {
  FEDPP_CHECK(e.features.defined() && e.labels.defined() && e.idx.defined() &&
                  e.client_logits.defined(),
              "FedGKT cache entry of client " + std::to_string(client) + " is incomplete");
  e.features = e.features.to(dtype_).contiguous();
  e.client_logits = e.client_logits.to(torch::kFloat).contiguous();
  e.labels = e.labels.to(torch::kLong).contiguous();
  e.idx = e.idx.to(torch::kLong).contiguous();
  e.test_features = e.test_features.defined() ? e.test_features.to(dtype_).contiguous()
                                              : torch::empty({0}, dtype_);
  e.test_labels = or_empty(e.test_labels, torch::kLong).to(torch::kLong);
  if (where_.count(client) && !where_[client]) {  // replace a spilled entry: drop its file
    std::error_code ec;
    fs::remove(file_of(client), ec);
    disk_bytes_.erase(client);
  }
  memory_[client] = std::move(e);
  where_[client] = true;
  put_order_.erase(std::remove(put_order_.begin(), put_order_.end(), client), put_order_.end());
  put_order_.push_back(client);
  enforce_budget();
}

void FeatureCache::spill(int64_t client) {
  const CacheEntry& e = memory_.at(client);
  std::vector<torch::Tensor> ts = {e.features, e.client_logits, e.labels,
                                   e.idx,      e.test_features, e.test_labels};
  ensure_dir();
  const std::string path = file_of(client);
  try {
    torch::save(ts, path);
  } catch (const c10::Error& err) {
    throw Error("cannot write the FedGKT cache file '" + path + "': " + err.what_without_backtrace() +
                " (set fedgkt.cache_dir to a writable folder with free space)");
  }
  disk_bytes_[client] = e.bytes();
  memory_.erase(client);
  where_[client] = false;
}

void FeatureCache::enforce_budget() {
  for (int64_t c : put_order_) {
    if (bytes_in_memory() <= max_bytes_) break;
    if (where_.at(c)) spill(c);
  }
}

CacheEntry FeatureCache::get(int64_t client) const {
  auto it = where_.find(client);
  FEDPP_CHECK(it != where_.end(), "FedGKT cache has no entry for client " +
                                      std::to_string(client));
  if (it->second) return memory_.at(client);
  std::vector<torch::Tensor> ts;
  const std::string path = file_of(client);
  try {
    torch::load(ts, path);
  } catch (const c10::Error& err) {
    throw Error("cannot read the FedGKT cache file '" + path + "': " + err.what_without_backtrace());
  }
  FEDPP_CHECK(ts.size() == 6, "FedGKT cache file '" + path + "' is malformed");
  return CacheEntry{ts[0], ts[1], ts[2], ts[3], ts[4], ts[5]};
}

bool FeatureCache::contains(int64_t client) const { return where_.count(client) > 0; }

std::vector<int64_t> FeatureCache::clients() const {
  std::vector<int64_t> out;
  for (const auto& [c, in_memory] : where_) out.push_back(c);
  return out;
}

int64_t FeatureCache::bytes_in_memory() const {
  int64_t b = 0;
  for (const auto& [c, e] : memory_) b += e.bytes();
  return b;
}

int64_t FeatureCache::bytes_on_disk() const {
  int64_t b = 0;
  for (const auto& [c, n] : disk_bytes_) b += n;
  return b;
}

int64_t FeatureCache::spilled_entries() const { return static_cast<int64_t>(disk_bytes_.size()); }

}  // namespace fedpp
