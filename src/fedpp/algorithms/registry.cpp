// The algorithm registry: one line per algorithm.
#include "fedpp/algorithms/fd.hpp"
#include "fedpp/algorithms/fedavg.hpp"
#include "fedpp/algorithms/feddropout.hpp"
#include "fedpp/algorithms/fedgh.hpp"
#include "fedpp/algorithms/fedgkt.hpp"
#include "fedpp/algorithms/fedkd.hpp"
#include "fedpp/algorithms/fedmoe.hpp"
#include "fedpp/algorithms/fedproto.hpp"
#include "fedpp/algorithms/fml.hpp"
#include "fedpp/algorithms/lgfedavg.hpp"
#include "fedpp/algorithms/standalone.hpp"
#include "fedpp/core/error.hpp"

#include <deque>
#include <mutex>

namespace fedpp {

namespace {
std::vector<AlgorithmInfo> builtin() {
  return {
      fedavg_info(),
      fedprox_info(),
      feddropout_info(),
      fedmoe_info(),
      standalone_info(),
      lgfedavg_info(),
      fedgh_info(),
      fedproto_info(),
      fd_info(),
      fml_info(),
      fedkd_info(),
      fedgkt_info(),
  };
}

std::mutex& registry_mutex() {
  static std::mutex mu;
  return mu;
}

// Entries are never removed, so references handed out stay valid (std::deque keeps them).
std::deque<AlgorithmInfo>& registry() {
  static std::deque<AlgorithmInfo> list = [] {
    auto b = builtin();
    return std::deque<AlgorithmInfo>(b.begin(), b.end());
  }();
  return list;
}

const std::deque<AlgorithmInfo>& all() { return registry(); }
}  // namespace

void register_algorithm(AlgorithmInfo info) {
  std::lock_guard<std::mutex> lock(registry_mutex());
  for (const auto& a : registry())
    FEDPP_CHECK(a.name != info.name, "an algorithm named '" + info.name + "' is already registered");
  registry().push_back(std::move(info));
}

const AlgorithmInfo& find_algorithm(const std::string& name) {
  std::lock_guard<std::mutex> lock(registry_mutex());
  for (const auto& a : all())
    if (a.name == name) return a;
  std::string known;
  for (const auto& a : all()) known += (known.empty() ? "" : ", ") + a.name;
  throw Error("unknown algorithm '" + name + "' (config key algorithm.name); known: " + known);
}

std::vector<std::string> algorithm_names() {
  std::lock_guard<std::mutex> lock(registry_mutex());
  std::vector<std::string> names;
  for (const auto& a : all()) names.push_back(a.name);
  return names;
}

}  // namespace fedpp
