#include "fedpp/runtime/fleet.hpp"

#include <toml++/toml.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <map>
#include <numeric>
#include <set>
#include <sstream>

#include "fedpp/core/error.hpp"
#include "fedpp/core/files.hpp"
#include "fedpp/core/random.hpp"
#include "fedpp/core/seed.hpp"
#include "fedpp/runtime/fleet_builtin.hpp"

namespace fedpp {

namespace {

double number(const toml::table& t, const std::string& key, const std::string& where,
              bool required, double def) {
  const toml::node* n = t.get(key);
  if (!n) {
    FEDPP_CHECK(!required, where + ": field '" + key + "' is missing (see runtime/fleet.hpp "
                           "or docs/fleet.md for the profile format)");
    return def;
  }
  std::optional<double> v = n->value<double>();
  FEDPP_CHECK(v && std::isfinite(*v), where + ": field '" + key + "' must be a number");
  return *v;
}

std::string text(const toml::table& t, const std::string& key, const std::string& where,
                 bool required) {
  const toml::node* n = t.get(key);
  if (!n) {
    FEDPP_CHECK(!required, where + ": field '" + key + "' is missing");
    return "";
  }
  auto v = n->value<std::string>();
  FEDPP_CHECK(v, where + ": field '" + key + "' must be a string");
  return *v;
}

void only_keys(const toml::table& t, const std::set<std::string>& known, const std::string& where) {
  for (const auto& [k, v] : t) {
    (void)v;
    const std::string key(k.str());
    FEDPP_CHECK(known.count(key), where + ": unknown field '" + key + "'");
  }
}

std::string read_text_file(const std::string& path, const std::string& what) {
  return read_input_file(path, what, uint64_t{256} << 20);
}

// A field for an error message: at most 40 characters of it.
std::string shown(const std::string& field) {
  return field.size() <= 40 ? field : field.substr(0, 40) + "...";
}

}  // namespace

FleetProfile parse_fleet_profile(const std::string& toml_text, const std::string& origin) {
  toml::table doc;
  try {
    doc = toml::parse(toml_text, origin);
  } catch (const toml::parse_error& e) {
    throw Error("fleet profile " + origin + " is not valid TOML: " +
                std::string(e.description()));
  }
  only_keys(doc, {"name", "source", "server", "class"}, "fleet profile " + origin);
  FleetProfile p;
  p.name = text(doc, "name", "fleet profile " + origin, false);
  p.source = text(doc, "source", "fleet profile " + origin, false);
  if (const toml::node* s = doc.get("server")) {
    const toml::table* st = s->as_table();
    FEDPP_CHECK(st, "fleet profile " + origin + ": [server] must be a table");
    const std::string where = "fleet profile " + origin + " [server]";
    only_keys(*st, {"compute_macs_per_s"}, where);
    p.server_macs_per_s = number(*st, "compute_macs_per_s", where, true, 0);
    FEDPP_CHECK(p.server_macs_per_s > 0, where + ": compute_macs_per_s must be > 0");
  }
  const toml::array* classes = doc.get_as<toml::array>("class");
  FEDPP_CHECK(classes && !classes->empty(),
              "fleet profile " + origin + " has no device class: add [[class]] tables");
  std::set<std::string> names;
  for (size_t i = 0; i < classes->size(); ++i) {
    const toml::table* ct = classes->get(i)->as_table();
    const std::string at = "fleet profile " + origin + " [[class]] #" + std::to_string(i + 1);
    FEDPP_CHECK(ct, at + " must be a table");
    only_keys(*ct, {"name", "share", "compute_macs_per_s", "down_bytes_per_s", "up_bytes_per_s",
                    "latency_s", "availability"},
              at);
    DeviceClass c;
    c.name = text(*ct, "name", at, true);
    const std::string where = at + " ('" + c.name + "')";
    FEDPP_CHECK(!c.name.empty() && names.insert(c.name).second,
                where + ": class names must be non-empty and distinct");
    c.share = number(*ct, "share", where, false, 1.0);
    c.compute_macs_per_s = number(*ct, "compute_macs_per_s", where, true, 0);
    c.down_bytes_per_s = number(*ct, "down_bytes_per_s", where, true, 0);
    c.up_bytes_per_s = number(*ct, "up_bytes_per_s", where, true, 0);
    c.latency_s = number(*ct, "latency_s", where, true, 0);
    c.availability = number(*ct, "availability", where, true, 0);
    FEDPP_CHECK(c.share > 0, where + ": share must be > 0");
    FEDPP_CHECK(c.compute_macs_per_s > 0, where + ": compute_macs_per_s must be > 0");
    FEDPP_CHECK(c.down_bytes_per_s > 0, where + ": down_bytes_per_s must be > 0");
    FEDPP_CHECK(c.up_bytes_per_s > 0, where + ": up_bytes_per_s must be > 0");
    FEDPP_CHECK(c.latency_s >= 0, where + ": latency_s must be >= 0");
    FEDPP_CHECK(c.availability > 0 && c.availability <= 1,
                where + ": availability must be in (0, 1]");
    p.classes.push_back(std::move(c));
  }
  return p;
}

std::vector<std::string> builtin_fleet_names() {
  std::vector<std::string> out;
  for (const auto& [name, text] : builtin_fleets()) out.push_back(name);
  return out;
}

const std::string& builtin_fleet_text(const std::string& name) {
  const auto& all = builtin_fleets();
  auto it = all.find(name);
  if (it == all.end()) {
    std::string known;
    for (const auto& [n, t] : all) known += (known.empty() ? "" : ", ") + n;
    throw Error("unknown built-in fleet '" + name + "' (known: " + known +
                "); or give the path of a profile file (a name ending in .toml)");
  }
  return it->second;
}

RoundClose close_round(std::vector<ClientTime> times, int64_t sampled, int64_t target,
                       double deadline_s, const std::vector<ClientTime>& departures) {
  std::sort(times.begin(), times.end(), [](const ClientTime& a, const ClientTime& b) {
    return a.seconds != b.seconds ? a.seconds < b.seconds : a.client < b.client;
  });
  RoundClose out;
  double last = 0;
  size_t i = 0;
  for (; i < times.size(); ++i) {
    if (static_cast<int64_t>(out.accepted.size()) >= target) break;
    if (deadline_s > 0 && times[i].seconds > deadline_s) break;
    out.accepted.push_back(times[i].client);
    last = times[i].seconds;
  }
  for (; i < times.size(); ++i) out.dropped.push_back(times[i].client);
  double departed = 0;  // when the server learnt of the last departure
  for (const auto& d : departures) {
    out.dropped.push_back(d.client);
    departed = std::max(departed, d.seconds);
  }
  const bool target_met = static_cast<int64_t>(out.accepted.size()) >= target;
  const bool all_resolved =
      static_cast<int64_t>(out.accepted.size() + departures.size()) == sampled && sampled > 0;
  if (target_met)
    out.round_s = last;  // the target-th arrival closes it
  else if (all_resolved || deadline_s <= 0)
    out.round_s = deadline_s > 0 ? std::min(deadline_s, std::max(last, departed))
                                 : std::max(last, departed);  // everyone arrived or left
  else
    out.round_s = deadline_s;  // waited for replies that came too late or never
  std::sort(out.accepted.begin(), out.accepted.end());
  std::sort(out.dropped.begin(), out.dropped.end());
  return out;
}

namespace {

// A client id from a CSV field (assignment or trace): digits only, below `clients`.
size_t client_field(const std::string& id, const std::string& where, size_t clients) {
  FEDPP_CHECK(!id.empty() && id.size() < 12 &&
                  std::all_of(id.begin(), id.end(), [](char ch) { return ch >= '0' && ch <= '9'; }),
              where + ": client '" + shown(id) + "' is not a client id");
  const uint64_t c = std::stoull(id);
  FEDPP_CHECK(c < clients, where + ": client " + id + " is out of range (the run has " +
                               std::to_string(clients) + " clients)");
  return static_cast<size_t>(c);
}

// A non-negative number of seconds from a CSV field (the whole field must be the number).
double seconds_field(const std::string& text, const std::string& where, const std::string& what) {
  char* end = nullptr;
  const bool plain = !text.empty() && (std::isdigit(static_cast<unsigned char>(text[0])) ||
                                       text[0] == '.');
  const double v = plain ? std::strtod(text.c_str(), &end) : NAN;
  FEDPP_CHECK(plain && end == text.c_str() + text.size() && std::isfinite(v) && v >= 0,
              where + ": " + what + " '" + shown(text) + "' is not a number of seconds >= 0");
  return v;
}

}  // namespace

AvailabilityTrace parse_availability_trace(const std::string& csv, const std::string& origin,
                                           int64_t num_clients, double period_s) {
  FEDPP_CHECK(std::isfinite(period_s) && period_s >= 0,
              "fleet.trace_period_s must be >= 0 (0: the trace does not repeat)");
  AvailabilityTrace t;
  t.period_s = period_s;
  t.online.resize(static_cast<size_t>(num_clients));
  std::vector<bool> listed(static_cast<size_t>(num_clients), false);
  std::istringstream in(csv);
  std::string line;
  for (int64_t lineno = 1; std::getline(in, line); ++lineno) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || (lineno == 1 && line == "client,from_s,until_s")) continue;
    const std::string where = "fleet.trace '" + origin + "' line " + std::to_string(lineno);
    const auto c1 = line.find(','), c2 = c1 == std::string::npos ? c1 : line.find(',', c1 + 1);
    FEDPP_CHECK(c2 != std::string::npos && line.find(',', c2 + 1) == std::string::npos,
                where + ": expected 'client,from_s,until_s'");
    const size_t c = client_field(line.substr(0, c1), where, listed.size());
    const double from = seconds_field(line.substr(c1 + 1, c2 - c1 - 1), where, "from_s");
    const double until = seconds_field(line.substr(c2 + 1), where, "until_s");
    FEDPP_CHECK(from <= until, where + ": from_s " + std::to_string(from) +
                                   " is after until_s " + std::to_string(until));
    FEDPP_CHECK(period_s == 0 || until <= period_s,
                where + ": until_s " + std::to_string(until) + " exceeds fleet.trace_period_s " +
                    std::to_string(period_s) + " (a repeating trace describes one period)");
    listed[c] = true;
    if (from < until) t.online[c].emplace_back(from, until);
  }
  for (size_t c = 0; c < listed.size(); ++c)
    FEDPP_CHECK(listed[c], "fleet.trace '" + origin + "' has no line for client " +
                               std::to_string(c) + ": list every client (\"" +
                               std::to_string(c) + ",0,0\" for one that is never online)");
  for (auto& periods : t.online) {  // sort and merge overlapping or touching periods
    std::sort(periods.begin(), periods.end());
    std::vector<std::pair<double, double>> merged;
    for (const auto& p : periods) {
      if (!merged.empty() && p.first <= merged.back().second)
        merged.back().second = std::max(merged.back().second, p.second);
      else
        merged.push_back(p);
    }
    periods = std::move(merged);
  }
  return t;
}

Fleet::Fleet(FleetProfile profile, int64_t num_clients, uint64_t run_seed,
             const std::string& assignment, AvailabilityTrace trace)
    : profile_(std::move(profile)), seed_(run_seed), trace_(std::move(trace)) {
  FEDPP_CHECK(trace_.online.empty() || trace_.online.size() == static_cast<size_t>(num_clients),
              "the availability trace is for " + std::to_string(trace_.online.size()) +
                  " clients, the run has " + std::to_string(num_clients));
  FEDPP_CHECK(!profile_.classes.empty(), "the fleet has no device class");
  const size_t n = static_cast<size_t>(num_clients);
  const size_t k = profile_.classes.size();
  class_of_.assign(n, -1);
  if (assignment == "seeded") {
    // Class sizes in proportion to the shares (largest remainder), over a seeded permutation.
    double total = 0;
    for (const auto& c : profile_.classes) total += c.share;
    std::vector<size_t> count(k);
    std::vector<std::pair<double, size_t>> rest;
    size_t given = 0;
    for (size_t j = 0; j < k; ++j) {
      const double q = profile_.classes[j].share / total * static_cast<double>(n);
      count[j] = static_cast<size_t>(std::floor(q));
      given += count[j];
      rest.emplace_back(q - std::floor(q), j);
    }
    std::stable_sort(rest.begin(), rest.end(),
                     [](const auto& a, const auto& b) { return a.first > b.first; });
    for (size_t r = 0; given < n; ++r, ++given) count[rest[r % k].second] += 1;
    std::vector<int64_t> order(n);
    std::iota(order.begin(), order.end(), 0);
    for (size_t i = n; i > 1; --i) {  // Fisher-Yates, portable draws
      const uint64_t bits = derive_seed(run_seed, Purpose::kFleet, {1, static_cast<uint64_t>(i)});
      std::swap(order[i - 1], order[bits_below(bits, i)]);
    }
    size_t pos = 0;
    for (size_t j = 0; j < k; ++j)
      for (size_t m = 0; m < count[j]; ++m) class_of_[static_cast<size_t>(order[pos++])] =
                                                 static_cast<int>(j);
  } else {
    std::map<std::string, int> index;
    for (size_t j = 0; j < k; ++j) index[profile_.classes[j].name] = static_cast<int>(j);
    std::istringstream in(read_text_file(assignment, "fleet.assignment"));
    std::string line;
    for (int lineno = 1; std::getline(in, line); ++lineno) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.empty() || (lineno == 1 && line == "client,class")) continue;
      const std::string where = "fleet.assignment '" + assignment + "' line " +
                                std::to_string(lineno);
      const auto comma = line.find(',');
      FEDPP_CHECK(comma != std::string::npos, where + ": expected 'client,class'");
      const std::string cls = line.substr(comma + 1);
      const size_t c = client_field(line.substr(0, comma), where, n);
      FEDPP_CHECK(class_of_[c] < 0, where + ": client " + std::to_string(c) + " is assigned twice");
      auto it = index.find(cls);
      FEDPP_CHECK(it != index.end(), where + ": unknown device class '" + cls + "'");
      class_of_[c] = it->second;
    }
    for (size_t c = 0; c < n; ++c)
      FEDPP_CHECK(class_of_[c] >= 0, "fleet.assignment '" + assignment + "' gives no class to client " +
                                         std::to_string(c) + ": list every client once");
  }
}

std::shared_ptr<const Fleet> Fleet::from_config(const Config& cfg, int64_t num_clients,
                                                uint64_t run_seed) {
  const std::string profile = cfg.get_string("fleet.profile", "");
  const std::string assignment = cfg.get_string("fleet.assignment", "seeded");
  const std::string trace = cfg.get_string("fleet.trace", "");
  const double period = cfg.get_double("fleet.trace_period_s", 0.0, 0.0, 1e15);
  if (profile.empty()) {
    for (const char* key : {"fleet.assignment", "fleet.trace", "fleet.trace_period_s"})
      FEDPP_CHECK(!cfg.has(key), std::string(key) + " is set but fleet.profile is not: name a fleet");
    return nullptr;
  }
  FEDPP_CHECK(!trace.empty() || !cfg.has("fleet.trace_period_s"),
              "fleet.trace_period_s is set but fleet.trace is not: name the trace file");
  const bool is_file = profile.size() > 5 && profile.substr(profile.size() - 5) == ".toml";
  FleetProfile p = is_file ? parse_fleet_profile(read_text_file(profile, "fleet.profile"), profile)
                           : parse_fleet_profile(builtin_fleet_text(profile), profile);
  AvailabilityTrace t;
  if (!trace.empty())
    t = parse_availability_trace(read_text_file(trace, "fleet.trace"), trace, num_clients, period);
  return std::make_shared<const Fleet>(std::move(p), num_clients, run_seed, assignment,
                                       std::move(t));
}

const DeviceClass& Fleet::device_of(int64_t client) const {
  FEDPP_CHECK(client >= 0 && static_cast<size_t>(client) < class_of_.size(),
              "client " + std::to_string(client) + " is not in the fleet");
  return profile_.classes[static_cast<size_t>(class_of_[static_cast<size_t>(client)])];
}

namespace {
// The time within the trace's period (t itself when the trace does not repeat).
double phase(double t, double period) { return period > 0 ? std::fmod(t, period) : t; }
}  // namespace

bool Fleet::available(int64_t round, int64_t client, double start_s) const {
  if (has_trace()) return online_until(client, start_s) > start_s;
  const double a = device_of(client).availability;
  if (a >= 1) return true;
  return bits_unit(derive_seed(seed_, Purpose::kFleet,
                          {2, static_cast<uint64_t>(round), static_cast<uint64_t>(client)})) < a;
}

double Fleet::online_until(int64_t client, double t) const {
  if (!has_trace()) return std::numeric_limits<double>::infinity();
  device_of(client);  // range check
  const auto& periods = trace_.online[static_cast<size_t>(client)];
  const double p = trace_.period_s, x = phase(t, p), base = t - x;
  for (const auto& [from, until] : periods) {
    if (x < from || x >= until) continue;
    if (p > 0 && until >= p && !periods.empty() && periods.front().first <= 0) {
      // Online through the period's end and from its start: continues into the next period.
      if (periods.front().second >= p) return std::numeric_limits<double>::infinity();
      return base + p + periods.front().second;
    }
    return base + until;
  }
  return t;  // offline at t
}

double Fleet::next_online(double t) const {
  double best = std::numeric_limits<double>::infinity();
  if (!has_trace()) return best;
  const double p = trace_.period_s, x = phase(t, p), base = t - x;
  for (const auto& periods : trace_.online)
    for (const auto& [from, until] : periods) {
      if (x < until) best = std::min(best, base + std::max(from, x));     // this period
      if (p > 0) best = std::min(best, base + p + from);                 // the next one
    }
  return best;
}

double Fleet::client_round_s(int64_t client, double bytes_down, double client_macs,
                             double bytes_up) const {
  const DeviceClass& d = device_of(client);
  return d.latency_s + bytes_down / d.down_bytes_per_s + client_macs / d.compute_macs_per_s +
         bytes_up / d.up_bytes_per_s;
}

double Fleet::server_s(double server_macs) const {
  return profile_.server_macs_per_s > 0 ? server_macs / profile_.server_macs_per_s : 0.0;
}

}  // namespace fedpp
