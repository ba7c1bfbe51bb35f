// Message — what crosses between server and client, and the only thing that does: named
// tensors, scalar metrics (numbers) and config values (strings). In simulation every Message is
// encoded through the configured codec pipeline into the wire format (proto/fedpp.proto) and
// decoded again, so that lossy effects are real; its encoded size in bytes is the
// communication cost that results report.
#pragma once
#include <map>
#include <string>

#include "fedpp/core/named_tensors.hpp"

namespace fedpp {

struct Message {
  NamedTensors tensors;
  std::map<std::string, double> metrics;
  std::map<std::string, std::string> config;

  // Convenience accessors; a missing key throws fedpp::Error naming it.
  double metric(const std::string& key) const;
  double metric_or(const std::string& key, double def) const;
  const std::string& config_value(const std::string& key) const;
};

}  // namespace fedpp
