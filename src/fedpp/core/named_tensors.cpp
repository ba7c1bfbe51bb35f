#include "fedpp/core/named_tensors.hpp"

#include <cstring>

#include "fedpp/core/error.hpp"

namespace fedpp {

void NamedTensors::set(const std::string& name, torch::Tensor t) {
  for (auto& [n, v] : items_)
    if (n == name) {
      v = std::move(t);
      return;
    }
  items_.emplace_back(name, std::move(t));
}

bool NamedTensors::contains(const std::string& name) const {
  for (const auto& [n, v] : items_)
    if (n == name) return true;
  return false;
}

const torch::Tensor& NamedTensors::at(const std::string& name) const {
  for (const auto& [n, v] : items_)
    if (n == name) return v;
  throw Error("tensor '" + name + "' is missing from the message or state");
}

torch::Tensor& NamedTensors::at(const std::string& name) {
  for (auto& [n, v] : items_)
    if (n == name) return v;
  throw Error("tensor '" + name + "' is missing from the message or state");
}

void NamedTensors::erase(const std::string& name) {
  for (auto it = items_.begin(); it != items_.end(); ++it)
    if (it->first == name) {
      items_.erase(it);
      return;
    }
}

std::vector<std::string> NamedTensors::names() const {
  std::vector<std::string> out;
  out.reserve(items_.size());
  for (const auto& [n, v] : items_) out.push_back(n);
  return out;
}

int64_t NamedTensors::numel() const {
  int64_t total = 0;
  for (const auto& [n, v] : items_) total += v.numel();
  return total;
}

NamedTensors NamedTensors::clone() const {
  NamedTensors out;
  out.items_.reserve(items_.size());
  for (const auto& [n, v] : items_) out.items_.emplace_back(n, v.detach().clone().contiguous());
  return out;
}

NamedTensors NamedTensors::with_prefix(const std::string& prefix, bool strip) const {
  NamedTensors out;
  for (const auto& [n, v] : items_)
    if (n.rfind(prefix, 0) == 0) out.items_.emplace_back(strip ? n.substr(prefix.size()) : n, v);
  return out;
}

NamedTensors NamedTensors::add_prefix(const std::string& prefix) const {
  NamedTensors out;
  for (const auto& [n, v] : items_) out.items_.emplace_back(prefix + n, v);
  return out;
}

torch::Tensor NamedTensors::flatten() const {
  std::vector<torch::Tensor> parts;
  parts.reserve(items_.size());
  for (const auto& [n, v] : items_) parts.push_back(v.detach().reshape({-1}).to(torch::kFloat));
  if (parts.empty()) return torch::zeros({0});
  return torch::cat(parts);
}

NamedTensors NamedTensors::unflatten(const torch::Tensor& flat, const NamedTensors& like) {
  FEDPP_CHECK(flat.dim() == 1 && flat.numel() == like.numel(),
              "unflatten: " + std::to_string(flat.numel()) + " values for " +
                  std::to_string(like.numel()) + " expected");
  NamedTensors out;
  int64_t off = 0;
  for (const auto& [n, v] : like.items_) {
    out.items_.emplace_back(n, flat.slice(0, off, off + v.numel()).reshape(v.sizes()).clone());
    off += v.numel();
  }
  return out;
}

namespace {
// True when no element of the contiguous float32 or float64 CPU array is NaN or Inf: the
// exponent bits are all ones exactly for those. A loop the compiler vectorises, without the
// bool tensor torch::isfinite would allocate (a quarter of the tensor's size).
template <typename Float, typename Bits, Bits kExp>
bool finite_bits(const void* data, int64_t n) {
  const auto* p = static_cast<const Float*>(data);
  Bits bad = 0;
  for (int64_t i = 0; i < n; ++i) {
    Bits b;
    std::memcpy(&b, p + i, sizeof b);
    bad |= static_cast<Bits>((b & kExp) == kExp);
  }
  return bad == 0;
}
}  // namespace

bool NamedTensors::all_finite() const {
  for (const auto& [n, v] : items_) {
    if (!v.is_floating_point()) continue;
    if (v.device().is_cpu() && v.is_contiguous() && v.scalar_type() == torch::kFloat) {
      if (!finite_bits<float, uint32_t, 0x7f800000u>(v.data_ptr(), v.numel())) return false;
    } else if (v.device().is_cpu() && v.is_contiguous() && v.scalar_type() == torch::kDouble) {
      if (!finite_bits<double, uint64_t, 0x7ff0000000000000ull>(v.data_ptr(), v.numel()))
        return false;
    } else if (!torch::isfinite(v).all().item<bool>()) {
      return false;
    }
  }
  return true;
}

NamedTensors module_state(const torch::nn::Module& m) {
  NamedTensors out;
  for (const auto& p : m.named_parameters(true)) out.set(p.key(), p.value().detach());
  for (const auto& b : m.named_buffers(true)) out.set(b.key(), b.value().detach());
  return out;
}

void load_module_state(torch::nn::Module& m, const NamedTensors& state, bool strict) {
  torch::NoGradGuard no_grad;
  size_t matched = 0;
  auto copy = [&](const std::string& name, torch::Tensor& dst) {
    if (!state.contains(name)) {
      FEDPP_CHECK(!strict, "state has no tensor '" + name + "' for this model");
      return;
    }
    const auto& src = state.at(name);
    FEDPP_CHECK(src.sizes() == dst.sizes(),
                "tensor '" + name + "' has shape " + c10::str(src.sizes()) +
                    " but the model expects " + c10::str(dst.sizes()));
    dst.copy_(src);
    ++matched;
  };
  for (auto& p : m.named_parameters(true)) copy(p.key(), p.value());
  for (auto& b : m.named_buffers(true)) copy(b.key(), b.value());
  FEDPP_CHECK(!strict || matched == state.size(),
              "state has " + std::to_string(state.size() - matched) +
                  " tensors the model does not have");
}

}  // namespace fedpp
