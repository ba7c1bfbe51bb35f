#include "fedpp/runtime/run_identity.hpp"

#include <map>
#include <nlohmann/json.hpp>

#include "fedpp/core/config.hpp"
#include "fedpp/core/error.hpp"

namespace fedpp {

namespace {

bool machine_specific(const std::string& key, bool with_fleet) {
  for (const char* p : {"output.", "runtime.", "deploy."})
    if (key.rfind(p, 0) == 0) return true;
  // fleet.*: simulated devices, which a deployment ignores (its devices are real).
  if (!with_fleet && key.rfind("fleet.", 0) == 0) return true;
  // Paths: each machine keeps its data, caches and start files where it likes.
  for (const char* k : {"data.root", "fedgkt.cache_dir", "model.init"})
    if (key == k) return true;
  return false;
}

std::map<std::string, nlohmann::json> parse(const std::string& text, const char* which) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const std::exception&) {
    throw Error(std::string("the ") + which + " run identity is not JSON (written by an older "
                "fedpp?): start a new run");
  }
  FEDPP_CHECK(j.is_object(), std::string("the ") + which + " run identity is not an object");
  std::map<std::string, nlohmann::json> out;
  for (auto it = j.begin(); it != j.end(); ++it) out[it.key()] = it.value();
  return out;
}

}  // namespace

std::string run_identity(const Config& cfg, bool with_fleet) {
  const auto flat = nlohmann::json::parse(cfg.resolved_json()).flatten();
  nlohmann::json out = nlohmann::json::object();
  for (auto it = flat.begin(); it != flat.end(); ++it) {
    std::string key = it.key().substr(1);  // "/train/lr" -> "train.lr"
    for (auto& ch : key)
      if (ch == '/') ch = '.';
    if (!machine_specific(key, with_fleet)) out[key] = it.value();
  }
  return out.dump();  // nlohmann's object keeps its keys sorted
}

std::vector<std::string> identity_differences(const std::string& ours, const std::string& theirs) {
  const auto a = parse(ours, "local"), b = parse(theirs, "other");
  std::vector<std::string> out;
  for (const auto& [k, v] : a) {
    auto it = b.find(k);
    if (it != b.end() && it->second != v)
      out.push_back(k + ": " + v.dump() + " here, " + it->second.dump() + " there");
  }
  return out;
}

std::vector<std::string> identity_keys(const std::string& identity) {
  std::vector<std::string> keys;
  for (const auto& [k, v] : parse(identity, "other")) keys.push_back(k);
  return keys;
}

}  // namespace fedpp
