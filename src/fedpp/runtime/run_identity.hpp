// What makes two processes part of the same run: the run-defining keys of the resolved config
// (every key read, defaults filled in, and every key present), leaving out output.*, runtime.*,
// deploy.*, fleet.* (simulated devices, which a deployment ignores) and paths (data.root,
// fedgkt.cache_dir, model.init), which may differ between the machines of one run. `fedpp join`
// compares the client's with the server's, and `fedpp serve --resume` / `fedpp run --resume` the
// config's with the checkpoint's; both refuse a mismatch naming the keys. No torch here.
#pragma once
#include <string>
#include <vector>

namespace fedpp {

class Config;

// Canonical JSON text: {"dotted.key": value, ...} in key order. `with_fleet` keeps fleet.*: a
// simulation's simulated devices change its numbers (`fedpp run --resume` compares them).
std::string run_identity(const Config& cfg, bool with_fleet = false);

// "key: <ours> here, <theirs> there" for every key both identities hold with different values.
// Throws fedpp::Error when either text is not an identity (e.g. of an older fedpp).
std::vector<std::string> identity_differences(const std::string& ours, const std::string& theirs);

// The keys of an identity (to mark them known on a process that reads only some of them).
std::vector<std::string> identity_keys(const std::string& identity);

}  // namespace fedpp
