// Federated Dropout's sub-models (docs/methods/feddropout.md): which hidden units a client keeps,
// cutting the kept rows / columns / filters of the global model into a smaller dense model, and
// mapping trained sub-models back with a per-entry weighted average.
//
// A model's hidden units come from Model::unit_groups(): unit u of a group occupies index range
// [u*block, (u+1)*block) along `dim` of each tensor the group lists. A selection keeps, per
// group, a sorted list of unit indices; the sub-model's tensors are the global tensors
// restricted to the kept index ranges along every listed dim (same names, smaller shapes), which
// is exactly the layout of Model::with_widths(selection.widths()).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "fedpp/core/named_tensors.hpp"
#include "fedpp/models/model.hpp"

namespace fedpp {

struct UnitSelection {
  std::vector<std::vector<int64_t>> kept;  // per unit group: kept unit indices, ascending
  std::vector<int64_t> widths() const;     // kept[i].size() for every group
};

// Units kept per group: max(1, round((1 - rate) * size)), rate in [0, 1).
int64_t kept_units(int64_t size, double rate);
// A seeded uniform choice of kept_units(size, rate) units of every group.
UnitSelection random_selection(const std::vector<UnitGroup>& groups, double rate, uint64_t seed);
// Every unit of every group (what rate 0 selects).
UnitSelection full_selection(const std::vector<UnitGroup>& groups);

// Widths as text for Message::config ("16,32,256") and back; parse throws fedpp::Error on
// malformed text, naming `what`.
std::string widths_to_string(const std::vector<int64_t>& widths);
std::vector<int64_t> widths_from_string(const std::string& text, const std::string& what);

// The sub-model of `global` for `sel`: every tensor restricted to the kept index ranges (tensors
// no group touches are copied whole). Throws fedpp::Error when a group names a tensor that is not
// in `global` or an index range outside it.
NamedTensors extract_submodel(const NamedTensors& global, const std::vector<UnitGroup>& groups,
                              const UnitSelection& sel);

// Accumulates trained sub-models and averages every global entry over the sub-models that held
// it, weighted (by num_samples); an entry no sub-model held keeps its value in `global`.
// Integer tensors (counters) are taken whole from the first sub-model of full shape, if any.
// Exact at rate 0: with full selections the result equals weighted_average() bit for bit.
class SubmodelAverager {
 public:
  SubmodelAverager(NamedTensors global, std::vector<UnitGroup> groups);
  // Throws fedpp::Error when `sub` lacks a tensor or has a shape other than the selection's.
  void add(const NamedTensors& sub, const UnitSelection& sel, double weight);
  NamedTensors result();

 private:
  struct Part {
    NamedTensors sub;
    UnitSelection sel;
    double weight = 0.0;
  };
  NamedTensors global_;
  std::vector<UnitGroup> groups_;
  std::vector<Part> parts_;
};

}  // namespace fedpp
