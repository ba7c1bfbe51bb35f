// NamedTensors — an ordered list of (name, tensor) pairs: a model's parameters and buffers, an
// update, a batch of feature maps. Order is insertion order and is part of the contract (it
// fixes the byte layout of flatten() and of encoded messages). Tensors are held by reference
// count (torch::Tensor semantics): clone() when a private copy is needed.
#pragma once
#include <torch/torch.h>

#include <string>
#include <utility>
#include <vector>

namespace fedpp {

class NamedTensors {
 public:
  NamedTensors() = default;

  // Adds or replaces `name`.
  void set(const std::string& name, torch::Tensor t);
  bool contains(const std::string& name) const;
  // Throws fedpp::Error naming `name` when absent.
  const torch::Tensor& at(const std::string& name) const;
  torch::Tensor& at(const std::string& name);
  void erase(const std::string& name);

  size_t size() const { return items_.size(); }
  bool empty() const { return items_.empty(); }
  auto begin() const { return items_.begin(); }
  auto end() const { return items_.end(); }
  auto begin() { return items_.begin(); }
  auto end() { return items_.end(); }
  std::vector<std::string> names() const;

  int64_t numel() const;                 // total elements over all tensors
  NamedTensors clone() const;            // deep copy (detached, contiguous)
  // Only the entries whose names start with `prefix` (kept as is, or with the prefix removed).
  NamedTensors with_prefix(const std::string& prefix, bool strip = false) const;
  NamedTensors add_prefix(const std::string& prefix) const;

  // All tensors as one 1-D float tensor, in order, and back (shapes taken from `like`).
  torch::Tensor flatten() const;
  static NamedTensors unflatten(const torch::Tensor& flat, const NamedTensors& like);

  // True when every element of every floating tensor is finite.
  bool all_finite() const;

 private:
  std::vector<std::pair<std::string, torch::Tensor>> items_;
};

// Parameters and buffers of a module as NamedTensors (detached, sharing storage with it).
NamedTensors module_state(const torch::nn::Module& m);
// Copies `state` into a module's parameters and buffers. Every name must exist with the same
// shape; `strict` also requires that the module has no entry missing from `state`.
void load_module_state(torch::nn::Module& m, const NamedTensors& state, bool strict = true);

}  // namespace fedpp
