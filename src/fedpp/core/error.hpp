// fedpp::Error — the one exception type for problems a user can cause (bad config, missing or
// corrupt file, malformed message, non-finite update). Its text names the thing that is wrong
// and how to fix it; the CLI prints it as a single line and exits non-zero.
#pragma once
#include <stdexcept>
#include <string>

namespace fedpp {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// Throws fedpp::Error(msg) when cond is false. msg is only built on failure.
#define FEDPP_CHECK(cond, msg)                                        \
  do {                                                                \
    if (!(cond)) throw ::fedpp::Error(std::string() + msg);           \
  } while (0)

}  // namespace fedpp
