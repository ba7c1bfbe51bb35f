// Config — an experiment's settings, read from a TOML file (plus `--set key=value` overrides).
// Every reader names the key it wants with a dotted path ("train.lr"), a default and the valid
// range; a value of the wrong type or out of range throws fedpp::Error naming the key. Every key
// read is remembered, so that after all components were built `check_all_used()` rejects a key
// that nothing reads (a typo) by name. Keys are case-sensitive. Copying a Config shares the
// underlying document and usage record (components built from one run see one record).
#pragma once
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

namespace fedpp {

class Config {
 public:
  Config();  // empty document: every getter returns its default
  static Config from_file(const std::string& path);
  static Config from_string(const std::string& toml_text, const std::string& origin = "<string>");

  // Applies "a.b.c=value"; the value is parsed as TOML (number, bool, "string", [list]) and
  // falls back to a bare string.
  void set(const std::string& assignment);

  bool has(const std::string& key) const;
  int64_t get_int(const std::string& key, int64_t def,
                  int64_t lo = std::numeric_limits<int64_t>::min(),
                  int64_t hi = std::numeric_limits<int64_t>::max()) const;
  double get_double(const std::string& key, double def,
                    double lo = -std::numeric_limits<double>::infinity(),
                    double hi = std::numeric_limits<double>::infinity()) const;
  bool get_bool(const std::string& key, bool def) const;
  std::string get_string(const std::string& key, const std::string& def) const;
  // A string that must be one of `choices`.
  std::string get_choice(const std::string& key, const std::string& def,
                         const std::vector<std::string>& choices) const;
  std::vector<std::string> get_strings(const std::string& key,
                                       const std::vector<std::string>& def) const;
  std::vector<double> get_doubles(const std::string& key, const std::vector<double>& def) const;

  // Marks every key under `prefix` as known (for sections a component reads dynamically).
  void mark_used(const std::string& prefix) const;
  // Throws fedpp::Error naming the first key that no component read.
  void check_all_used() const;

  // The resolved document: every key read (with the default where the file had none) and every
  // key present, as TOML text. Written beside each run's results.
  std::string resolved_toml() const;
  // The same as JSON.
  std::string resolved_json() const;
  const std::string& origin() const;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace fedpp
