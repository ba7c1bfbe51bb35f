#include "fedpp/fl/message.hpp"

#include "fedpp/core/error.hpp"

namespace fedpp {

double Message::metric(const std::string& key) const {
  auto it = metrics.find(key);
  FEDPP_CHECK(it != metrics.end(), "message has no metric '" + key + "'");
  return it->second;
}

double Message::metric_or(const std::string& key, double def) const {
  auto it = metrics.find(key);
  return it == metrics.end() ? def : it->second;
}

const std::string& Message::config_value(const std::string& key) const {
  auto it = config.find(key);
  FEDPP_CHECK(it != config.end(), "message has no config value '" + key + "'");
  return it->second;
}

}  // namespace fedpp
