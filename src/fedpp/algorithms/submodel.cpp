#include "fedpp/algorithms/submodel.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "fedpp/core/error.hpp"
#include "fedpp/core/seed.hpp"
#include "fedpp/fl/training.hpp"

namespace fedpp {

namespace {

// Per dim of tensor `name` (shape `sizes`): the kept global indices, or an undefined tensor
// where the dim is kept whole.
std::vector<torch::Tensor> kept_indices(const std::string& name, at::IntArrayRef sizes,
                                        const std::vector<UnitGroup>& groups,
                                        const UnitSelection& sel) {
  std::vector<torch::Tensor> idx(sizes.size());
  for (size_t g = 0; g < groups.size(); ++g)
    for (const auto& s : groups[g].slices) {
      if (s.tensor != name) continue;
      FEDPP_CHECK(s.dim >= 0 && s.dim < static_cast<int64_t>(sizes.size()) &&
                      groups[g].size * s.block == sizes[s.dim],
                  "unit group " + groups[g].name + " does not fit tensor '" + name + "' of shape " +
                      c10::str(sizes));
      FEDPP_CHECK(!idx[s.dim].defined(), "two unit groups slice dim " + std::to_string(s.dim) +
                                             " of tensor '" + name + "'");
      std::vector<int64_t> v;
      v.reserve(sel.kept[g].size() * s.block);
      for (int64_t u : sel.kept[g])
        for (int64_t b = 0; b < s.block; ++b) v.push_back(u * s.block + b);
      idx[s.dim] = torch::tensor(v, torch::kLong);
    }
  return idx;
}

torch::Tensor restrict(torch::Tensor t, const std::vector<torch::Tensor>& idx) {
  for (size_t d = 0; d < idx.size(); ++d)
    if (idx[d].defined()) t = t.index_select(static_cast<int64_t>(d), idx[d]);
  return t;
}

void check_selection(const std::vector<UnitGroup>& groups, const UnitSelection& sel) {
  FEDPP_CHECK(sel.kept.size() == groups.size(),
              "a unit selection for " + std::to_string(sel.kept.size()) +
                  " groups does not fit a model with " + std::to_string(groups.size()));
  for (size_t g = 0; g < groups.size(); ++g)
    for (int64_t u : sel.kept[g])
      FEDPP_CHECK(u >= 0 && u < groups[g].size,
                  "unit " + std::to_string(u) + " is outside group " + groups[g].name);
}

}  // namespace

std::vector<int64_t> UnitSelection::widths() const {
  std::vector<int64_t> w;
  for (const auto& k : kept) w.push_back(static_cast<int64_t>(k.size()));
  return w;
}

int64_t kept_units(int64_t size, double rate) {
  return std::max<int64_t>(1, std::llround((1.0 - rate) * static_cast<double>(size)));
}

UnitSelection random_selection(const std::vector<UnitGroup>& groups, double rate, uint64_t seed) {
  UnitSelection sel;
  for (size_t g = 0; g < groups.size(); ++g) {
    auto order = shuffled_order(groups[g].size, derive_seed(seed, {static_cast<uint64_t>(g)}));
    order.resize(static_cast<size_t>(kept_units(groups[g].size, rate)));
    std::sort(order.begin(), order.end());
    sel.kept.push_back(std::move(order));
  }
  return sel;
}

UnitSelection full_selection(const std::vector<UnitGroup>& groups) {
  return random_selection(groups, 0.0, 0);
}

std::string widths_to_string(const std::vector<int64_t>& widths) {
  std::string s;
  for (int64_t w : widths) s += (s.empty() ? "" : ",") + std::to_string(w);
  return s;
}

std::vector<int64_t> widths_from_string(const std::string& text, const std::string& what) {
  std::vector<int64_t> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    size_t used = 0;
    int64_t v = 0;
    try {
      v = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    FEDPP_CHECK(used == item.size() && !item.empty() && v >= 1,
                what + " must be a comma-separated list of positive widths, got '" + text + "'");
    out.push_back(v);
  }
  FEDPP_CHECK(!out.empty(), what + " is empty");
  return out;
}

NamedTensors extract_submodel(const NamedTensors& global, const std::vector<UnitGroup>& groups,
                              const UnitSelection& sel) {
  check_selection(groups, sel);
  for (const auto& g : groups)
    for (const auto& s : g.slices)
      FEDPP_CHECK(global.contains(s.tensor),
                  "unit group " + g.name + " names tensor '" + s.tensor + "', not in the model");
  NamedTensors out;
  for (const auto& [name, t] : global)
    out.set(name, restrict(t, kept_indices(name, t.sizes(), groups, sel)).contiguous());
  return out;
}

SubmodelAverager::SubmodelAverager(NamedTensors global, std::vector<UnitGroup> groups)
    : global_(std::move(global)), groups_(std::move(groups)) {}

void SubmodelAverager::add(const NamedTensors& sub, const UnitSelection& sel, double weight) {
  check_selection(groups_, sel);
  for (const auto& [name, t] : global_) {
    auto expect = t.sizes().vec();
    const auto idx = kept_indices(name, t.sizes(), groups_, sel);
    for (size_t d = 0; d < idx.size(); ++d)
      if (idx[d].defined()) expect[d] = idx[d].numel();
    FEDPP_CHECK(sub.contains(name), "sub-model lacks tensor '" + name + "'");
    FEDPP_CHECK(sub.at(name).sizes() == at::IntArrayRef(expect),
                "sub-model tensor '" + name + "' has shape " + c10::str(sub.at(name).sizes()) +
                    ", but its unit selection gives " + c10::str(expect));
  }
  parts_.push_back({sub, sel, weight});
}

NamedTensors SubmodelAverager::result() {
  NamedTensors out;
  for (const auto& [name, ref] : global_) {
    if (parts_.empty()) {
      out.set(name, ref.clone());
      continue;
    }
    if (!ref.is_floating_point()) {  // counters: from the first sub-model holding all of it
      torch::Tensor v = ref;
      for (const auto& p : parts_)
        if (p.sub.at(name).sizes() == ref.sizes()) {
          v = p.sub.at(name);
          break;
        }
      out.set(name, v.clone());
      continue;
    }
    // Flat global index of every entry of each sub-model.
    const auto all = torch::arange(ref.numel(), torch::kLong).view(ref.sizes());
    std::vector<torch::Tensor> pos;
    for (const auto& p : parts_)
      pos.push_back(restrict(all, kept_indices(name, ref.sizes(), groups_, p.sel)).reshape(-1));
    // Two passes, so that full selections reproduce weighted_average() exactly: the weight total
    // of every entry, then sum_k v_k * (w_k / total).
    auto total = torch::zeros({ref.numel()}, torch::kDouble);
    for (size_t k = 0; k < parts_.size(); ++k)
      total.index_add_(0, pos[k], torch::full({pos[k].numel()}, parts_[k].weight, torch::kDouble));
    auto acc = torch::zeros({ref.numel()}, torch::kDouble);
    for (size_t k = 0; k < parts_.size(); ++k) {
      auto v = parts_[k].sub.at(name).reshape(-1).to(torch::kDouble);
      acc.index_add_(0, pos[k], v * (parts_[k].weight / total.index_select(0, pos[k])));
    }
    auto held = total > 0;
    auto avg = torch::where(held, acc, ref.reshape(-1).to(torch::kDouble));
    out.set(name, avg.to(ref.scalar_type()).view(ref.sizes()).contiguous());
  }
  return out;
}

}  // namespace fedpp
