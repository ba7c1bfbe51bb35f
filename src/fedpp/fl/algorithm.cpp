#include "fedpp/fl/algorithm.hpp"

#include <algorithm>

namespace fedpp {

std::map<std::string, double> summarise_personal(const ClientEvals& evals) {
  double sum = 0, lo = 1e300, hi = -1e300;
  std::map<std::string, double> extra, out;
  for (const auto& [c, r] : evals) {
    const double a = r.at("accuracy");
    sum += a;
    lo = std::min(lo, a);
    hi = std::max(hi, a);
    for (const auto& [k, v] : r)
      if (k != "accuracy" && k != "client" && k != "num_samples") extra[k] += v;
  }
  const double n = static_cast<double>(evals.size());
  out["personal_accuracy_mean"] = sum / n;
  out["personal_accuracy_min"] = lo;
  out["personal_accuracy_max"] = hi;
  for (const auto& [k, v] : extra) out["personal_" + k + "_mean"] = v / n;
  return out;
}

}  // namespace fedpp
