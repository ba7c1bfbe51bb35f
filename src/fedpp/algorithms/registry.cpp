// The algorithm registry: one line per algorithm.
#include "fedpp/algorithms/fedavg.hpp"
#include "fedpp/core/error.hpp"

namespace fedpp {

namespace {
const std::vector<AlgorithmInfo>& all() {
  static const std::vector<AlgorithmInfo> list = {
      fedavg_info(),
      fedprox_info(),
  };
  return list;
}
}  // namespace

const AlgorithmInfo& find_algorithm(const std::string& name) {
  for (const auto& a : all())
    if (a.name == name) return a;
  std::string known;
  for (const auto& a : all()) known += (known.empty() ? "" : ", ") + a.name;
  throw Error("unknown algorithm '" + name + "' (config key algorithm.name); known: " + known);
}

std::vector<std::string> algorithm_names() {
  std::vector<std::string> names;
  for (const auto& a : all()) names.push_back(a.name);
  return names;
}

}  // namespace fedpp
