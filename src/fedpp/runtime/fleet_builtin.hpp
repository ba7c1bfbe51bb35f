// The built-in device fleets of runtime/fleet.hpp, as profile TOML text (the same format as a
// profile file), keyed by name. Their figures and sources are in the texts and in docs/fleet.md.
#pragma once
#include <map>
#include <string>

namespace fedpp {

const std::map<std::string, std::string>& builtin_fleets();

}  // namespace fedpp
