#include "fedpp/core/config.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <toml++/toml.h>

#include "fedpp/core/error.hpp"

namespace fedpp {

struct Config::Impl {
  toml::table doc;
  std::string origin = "<defaults>";
  mutable std::mutex mu;
  mutable std::set<std::string> used;
  mutable std::set<std::string> used_prefixes;
  mutable toml::table resolved;  // every key read, with its effective value
};

namespace {

std::vector<std::string> split_path(const std::string& key) {
  std::vector<std::string> parts;
  std::stringstream ss(key);
  std::string p;
  while (std::getline(ss, p, '.')) parts.push_back(p);
  FEDPP_CHECK(!parts.empty() && std::none_of(parts.begin(), parts.end(),
                                             [](const std::string& s) { return s.empty(); }),
              "config key '" + key + "' is not a valid dotted path");
  return parts;
}

// The table that holds the last part of `parts`, creating sub-tables on the way.
toml::table& parent_table(toml::table& root, const std::vector<std::string>& parts,
                          const std::string& key) {
  toml::table* t = &root;
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    auto* node = t->get(parts[i]);
    if (!node) {
      t->insert(parts[i], toml::table{});
      node = t->get(parts[i]);
    }
    FEDPP_CHECK(node->is_table(), "config key '" + key + "': '" + parts[i] +
                                      "' is a value, not a section");
    t = node->as_table();
  }
  return *t;
}

template <typename V>
void put(toml::table& root, const std::string& key, V&& value) {
  auto parts = split_path(key);
  parent_table(root, parts, key).insert_or_assign(parts.back(), std::forward<V>(value));
}

std::string type_name(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a number";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::array: return "a list";
    case toml::node_type::table: return "a section";
    default: return "a date/time";
  }
}

void collect_leaves(const toml::table& t, const std::string& prefix,
                    std::vector<std::string>* out) {
  for (auto&& [k, v] : t) {
    std::string key = prefix.empty() ? std::string(k.str()) : prefix + "." + std::string(k.str());
    if (v.is_table())
      collect_leaves(*v.as_table(), key, out);
    else
      out->push_back(key);
  }
}

}  // namespace

Config::Config() : impl_(std::make_shared<Impl>()) {}

Config Config::from_string(const std::string& text, const std::string& origin) {
  Config c;
  try {
    c.impl_->doc = toml::parse(text, origin);
  } catch (const toml::parse_error& e) {
    std::ostringstream msg;
    msg << "config " << origin << " line " << e.source().begin.line << ": "
        << e.description() << " (fix the TOML syntax there)";
    throw Error(msg.str());
  }
  c.impl_->origin = origin;
  return c;
}

Config Config::from_file(const std::string& path) {
  std::error_code ec;
  FEDPP_CHECK(!std::filesystem::is_directory(path, ec),
              "config '" + path + "' is a directory: give a TOML file, e.g. configs/default.toml");
  std::ifstream in(path);
  FEDPP_CHECK(in.good(), "config file '" + path + "' cannot be read: check the path");
  std::stringstream ss;
  ss << in.rdbuf();
  return from_string(ss.str(), path);
}

const std::string& Config::origin() const { return impl_->origin; }

void Config::set(const std::string& assignment) {
  auto eq = assignment.find('=');
  FEDPP_CHECK(eq != std::string::npos && eq > 0,
              "override '" + assignment + "' is not of the form key=value (e.g. train.lr=0.05)");
  std::string key = assignment.substr(0, eq);
  std::string value = assignment.substr(eq + 1);
  auto parts = split_path(key);
  auto& parent = parent_table(impl_->doc, parts, key);
  try {
    auto parsed = toml::parse("v = " + value);
    parent.insert_or_assign(parts.back(), std::move(*parsed.get("v")));
  } catch (const toml::parse_error&) {
    parent.insert_or_assign(parts.back(), value);  // a bare word: a string
  }
}

namespace {
const toml::node* find(const toml::table& doc, const std::string& key) {
  const toml::node* n = &doc;
  for (const auto& p : split_path(key)) {
    if (!n->is_table()) return nullptr;
    n = n->as_table()->get(p);
    if (!n) return nullptr;
  }
  return n;
}
}  // namespace

bool Config::has(const std::string& key) const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return find(impl_->doc, key) != nullptr;
}

#define FEDPP_CONFIG_LOOKUP(key)                          \
  std::lock_guard<std::mutex> lock(impl_->mu);            \
  impl_->used.insert(key);                                \
  const toml::node* n = find(impl_->doc, key);

namespace {
Error bad_type(const Config& c, const std::string& key, const toml::node& n,
               const std::string& want) {
  return Error("config key '" + key + "' in " + c.origin() + " is " + type_name(n) +
               "; it must be " + want);
}
}  // namespace

int64_t Config::get_int(const std::string& key, int64_t def, int64_t lo, int64_t hi) const {
  FEDPP_CONFIG_LOOKUP(key);
  int64_t v = def;
  if (n) {
    if (auto i = n->value_exact<int64_t>())
      v = *i;
    else
      throw bad_type(*this, key, *n, "an integer");
  }
  FEDPP_CHECK(v >= lo && v <= hi, "config key '" + key + "' = " + std::to_string(v) +
                                      " is out of range [" + std::to_string(lo) + ", " +
                                      std::to_string(hi) + "]");
  put(impl_->resolved, key, v);
  return v;
}

double Config::get_double(const std::string& key, double def, double lo, double hi) const {
  FEDPP_CONFIG_LOOKUP(key);
  double v = def;
  if (n) {
    if (auto d = n->value<double>())
      v = *d;
    else
      throw bad_type(*this, key, *n, "a number");
  }
  FEDPP_CHECK(std::isfinite(v) && v >= lo && v <= hi,
              "config key '" + key + "' = " + std::to_string(v) + " is out of range [" +
                  std::to_string(lo) + ", " + std::to_string(hi) + "]");
  put(impl_->resolved, key, v);
  return v;
}

bool Config::get_bool(const std::string& key, bool def) const {
  FEDPP_CONFIG_LOOKUP(key);
  bool v = def;
  if (n) {
    if (auto b = n->value_exact<bool>())
      v = *b;
    else
      throw bad_type(*this, key, *n, "true or false");
  }
  put(impl_->resolved, key, v);
  return v;
}

std::string Config::get_string(const std::string& key, const std::string& def) const {
  FEDPP_CONFIG_LOOKUP(key);
  std::string v = def;
  if (n) {
    if (auto s = n->value_exact<std::string>())
      v = *s;
    else
      throw bad_type(*this, key, *n, "a string");
  }
  put(impl_->resolved, key, v);
  return v;
}

std::string Config::get_choice(const std::string& key, const std::string& def,
                               const std::vector<std::string>& choices) const {
  std::string v = get_string(key, def);
  if (std::find(choices.begin(), choices.end(), v) == choices.end()) {
    std::string list;
    for (const auto& c : choices) list += (list.empty() ? "" : ", ") + c;
    throw Error("config key '" + key + "' = '" + v + "' is not one of: " + list);
  }
  return v;
}

std::vector<std::string> Config::get_strings(const std::string& key,
                                             const std::vector<std::string>& def) const {
  FEDPP_CONFIG_LOOKUP(key);
  std::vector<std::string> v = def;
  if (n) {
    v.clear();
    auto* arr = n->as_array();
    if (!arr) throw bad_type(*this, key, *n, "a list of strings");
    for (auto&& e : *arr) {
      auto s = e.value_exact<std::string>();
      if (!s) throw Error("config key '" + key + "' must be a list of strings");
      v.push_back(*s);
    }
  }
  toml::array out;
  for (const auto& s : v) out.push_back(s);
  put(impl_->resolved, key, std::move(out));
  return v;
}

std::vector<double> Config::get_doubles(const std::string& key,
                                        const std::vector<double>& def) const {
  FEDPP_CONFIG_LOOKUP(key);
  std::vector<double> v = def;
  if (n) {
    v.clear();
    auto* arr = n->as_array();
    if (!arr) throw bad_type(*this, key, *n, "a list of numbers");
    for (auto&& e : *arr) {
      auto d = e.value<double>();
      if (!d) throw Error("config key '" + key + "' must be a list of numbers");
      v.push_back(*d);
    }
  }
  toml::array out;
  for (double d : v) out.push_back(d);
  put(impl_->resolved, key, std::move(out));
  return v;
}

void Config::mark_used(const std::string& prefix) const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->used_prefixes.insert(prefix);
  if (const toml::node* n = find(impl_->doc, prefix)) {
    auto parts = split_path(prefix);
    parent_table(impl_->resolved, parts, prefix).insert_or_assign(parts.back(), *n);
  }
}

void Config::check_all_used() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  std::vector<std::string> leaves;
  collect_leaves(impl_->doc, "", &leaves);
  for (const auto& key : leaves) {
    if (impl_->used.count(key)) continue;
    bool under = false;
    for (const auto& p : impl_->used_prefixes)
      if (key == p || key.rfind(p + ".", 0) == 0) under = true;
    if (under) continue;
    // Suggest a known key of the same section.
    std::string section = key.substr(0, key.rfind('.') == std::string::npos ? 0 : key.rfind('.'));
    std::string known;
    for (const auto& u : impl_->used) {
      std::string us = u.substr(0, u.rfind('.') == std::string::npos ? 0 : u.rfind('.'));
      if (us == section) known += (known.empty() ? "" : ", ") + u;
    }
    throw Error("unknown config key '" + key + "' in " + impl_->origin +
                (known.empty() ? std::string(": remove it")
                               : ": remove or correct it (known keys there: " + known + ")"));
  }
}

std::string Config::resolved_toml() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  std::ostringstream ss;
  ss << impl_->resolved << "\n";
  return ss.str();
}

std::string Config::resolved_json() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  std::ostringstream ss;
  ss << toml::json_formatter{impl_->resolved} << "\n";
  return ss.str();
}

}  // namespace fedpp
