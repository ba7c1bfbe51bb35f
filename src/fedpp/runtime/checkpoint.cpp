#include "fedpp/runtime/checkpoint.hpp"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "fedpp/core/error.hpp"
#include "fedpp/core/files.hpp"
#include "fedpp/fl/wire.hpp"

namespace fedpp {

namespace fs = std::filesystem;

namespace {

void write_file(const fs::path& path, const std::string& bytes) {
  write_file_atomic(path.string(), bytes, "check deploy.checkpoint_dir and free disk space");
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  FEDPP_CHECK(in.good(), "cannot read checkpoint file " + path.string());
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

void write_checkpoint(const std::string& dir, const Checkpoint& c) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  FEDPP_CHECK(!ec, "cannot create checkpoint folder '" + dir + "': " + ec.message() +
                       " (set deploy.checkpoint_dir to a writable place)");
  static const Pipeline lossless;
  const std::string state_name = "state_" + std::to_string(c.round) + ".bin";
  write_file(fs::path(dir) / state_name, encode_message(c.state, lossless, 0));

  nlohmann::json j;
  j["round"] = c.round;
  j["run_id"] = c.run_id;
  j["fingerprint"] = c.fingerprint;
  j["state"] = state_name;
  j["clients"] = c.clients;
  j["rows"] = nlohmann::json::array();
  for (const auto& row : c.rows) j["rows"].push_back(nlohmann::json(row));
  write_file(fs::path(dir) / "checkpoint.json", j.dump());

  std::vector<fs::path> old;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if ((name.rfind("state_", 0) == 0 && name != state_name) ||
        (name.rfind("clients_", 0) == 0 && name != c.clients))
      old.push_back(e.path());
  }
  for (const auto& p : old) fs::remove_all(p, ec);
}

std::optional<Checkpoint> read_checkpoint(const std::string& dir) {
  const fs::path path = fs::path(dir) / "checkpoint.json";
  if (!fs::exists(path)) return std::nullopt;
  Checkpoint c;
  try {
    auto j = nlohmann::json::parse(read_file(path));
    c.round = j.at("round").get<int64_t>();
    c.run_id = j.at("run_id").get<std::string>();
    c.fingerprint = j.at("fingerprint").get<std::string>();
    c.clients = j.value("clients", std::string());
    FEDPP_CHECK(c.clients.find('/') == std::string::npos &&
                    c.clients.find("..") == std::string::npos,
                "corrupt checkpoint " + path.string() + ": bad client folder name '" + c.clients +
                    "' (delete the folder to start over)");
    for (const auto& r : j.at("rows")) {
      Row row;
      for (auto it = r.begin(); it != r.end(); ++it)
        if (it->is_number()) row[it.key()] = it->get<double>();
      c.rows.push_back(std::move(row));
    }
    c.state = decode_message(read_file(fs::path(dir) / j.at("state").get<std::string>()), 0);
  } catch (const nlohmann::json::exception& e) {
    throw Error("corrupt checkpoint " + path.string() + ": " + e.what() +
                " (delete the folder to start over)");
  }
  return c;
}

}  // namespace fedpp
