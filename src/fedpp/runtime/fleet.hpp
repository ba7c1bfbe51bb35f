// A simulated device fleet: what each client's device computes and transmits per second, how
// long its connection takes to set up, and how often it is online; and the simulated clock that
// turns a round's measured bytes and multiply-adds into seconds on those devices.
//
// Config (all optional; without fleet.profile the simulation has no clock, as before):
//   fleet.profile     built-in fleet name (builtin_fleet_names()) or the path of a profile file
//   fleet.assignment  "seeded" (default: clients get classes in proportion to their shares, in a
//                     seeded order) or the path of a CSV file with lines "client,class"
//   sampling.over_select  sample this many times the target count among online clients and
//                     keep the first target-count replies to arrive (>= 1, default 1)
//   sampling.deadline_s   replies arriving later than this (simulated seconds after the round
//                     starts) are dropped (0 = no deadline)
//   fleet.trace       the path of an availability trace (CSV, below); replaces the classes'
//                     availability draws: who is online follows the simulated clock
//   fleet.trace_period_s  > 0: the trace repeats with this period (e.g. 86400 for a daily
//                     trace); 0 (default): after its last interval a client stays offline
//
// A profile file (TOML):
//   name = "my fleet"
//   source = "where the figures come from"
//   [server]                                  # optional: time the server's own training
//   compute_macs_per_s = 1e12
//   [[class]]
//   name = "phone_mid"
//   share = 0.5                 # > 0; shares are normalised over the classes
//   compute_macs_per_s = 2e9    # multiply-adds per second of local training (> 0)
//   down_bytes_per_s = 3e6      # down-link bandwidth, bytes per second (> 0)
//   up_bytes_per_s = 1e6        # up-link bandwidth, bytes per second (> 0)
//   latency_s = 0.1             # per round: connection set-up and round trips (>= 0)
//   availability = 0.8          # probability that the device is online in a round, (0, 1]
//
// An availability trace (CSV, optional header "client,from_s,until_s"): one line per online
// period, "client,from_s,until_s", in simulated seconds since the run started, 0 <= from_s <=
// until_s (and until_s <= trace_period_s when the trace repeats); a client may have many lines,
// overlapping ones are merged, and every client of the run needs at least one line ("7,0,0"
// lists a client that is never online). A client can be asked in a round when it is online at
// the round's start; if it goes offline before its reply would arrive, the reply never comes
// (the client counts as dropped, and `left` in fleet.jsonl), as in FedScale's trace-driven runs.
// When nobody is online at a round's start, the clock waits until the first client comes
// online (the wait counts in sim_round_s); when nobody ever comes online again the run stops
// with an error. Trace files are capped at 256 MiB.
//
// The clock: a sampled client's round time is
//   latency_s + bytes_down / down_bytes_per_s + client_macs / compute_macs_per_s
//             + bytes_up / up_bytes_per_s
// with the bytes it was sent and sent back (encoded, as counted in bytes_down/bytes_up) and
// the multiply-adds its reply reports (client_macs). The round closes as deployed systems close
// it (Bonawitz et al., MLSys 2019): at the target-count-th arrival, or when every sampled client
// has arrived, or at the deadline, whichever comes first; the rest are dropped (not
// aggregated). With [server] compute_macs_per_s the server's training (server_macs) is added.
// Every draw is seeded from the run seed with a portable generator, so the same config and seed
// give the same classes, availabilities, drops and times on every platform.
//
// Threading: a Fleet is immutable after construction; its methods may be called from any thread.
// Errors: a bad profile, assignment file or key throws fedpp::Error naming the field and fix.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "fedpp/core/config.hpp"

namespace fedpp {

struct DeviceClass {
  std::string name;
  double share = 1;
  double compute_macs_per_s = 0;
  double down_bytes_per_s = 0;
  double up_bytes_per_s = 0;
  double latency_s = 0;
  double availability = 1;
};

struct FleetProfile {
  std::string name;
  std::string source;
  double server_macs_per_s = 0;  // 0: the server's time is not counted
  std::vector<DeviceClass> classes;
};

// Parses a profile (format above); `origin` names it in errors.
FleetProfile parse_fleet_profile(const std::string& toml_text, const std::string& origin);
std::vector<std::string> builtin_fleet_names();
// The TOML text of a built-in fleet; throws fedpp::Error listing the names when unknown.
const std::string& builtin_fleet_text(const std::string& name);

// One sampled client's simulated round, in seconds.
struct ClientTime {
  int64_t client = 0;
  double seconds = 0;
};

// Who a round keeps and when it ends (see the rule above).
struct RoundClose {
  std::vector<int64_t> accepted;  // sorted by client id
  std::vector<int64_t> dropped;   // sorted by client id
  double round_s = 0;             // seconds from the round's start to its close
};

// The closing rule on its own: `times` are the arrivals of the replies (clients that never
// reply are simply absent), `sampled` how many clients were asked, `target` how many replies
// the round wants, `deadline_s` 0 for none. Ties in time go to the lower client id. A round
// with no client online lasts the deadline (nothing without one). `departures`: asked clients
// whose device went offline (an availability trace) at the given time, before their reply
// could arrive: they are dropped, and the server knows it at that time, so a round that misses
// its target closes once every asked client has arrived or departed (at the deadline if that
// comes first).
RoundClose close_round(std::vector<ClientTime> times, int64_t sampled, int64_t target,
                       double deadline_s, const std::vector<ClientTime>& departures = {});

// Online periods per client (fleet.trace), merged and sorted; empty `online` = no trace.
struct AvailabilityTrace {
  std::vector<std::vector<std::pair<double, double>>> online;  // by client: [from_s, until_s)
  double period_s = 0;                                          // 0: the trace does not repeat
};
// Parses a trace's CSV text (format above) for clients 0..num_clients-1; `origin` names it in
// errors.
AvailabilityTrace parse_availability_trace(const std::string& csv, const std::string& origin,
                                           int64_t num_clients, double period_s = 0);

class Fleet {
 public:
  // Assigns classes to clients 0..num_clients-1. `assignment` is "seeded" or a CSV path.
  // With a non-empty `trace`, availability follows it instead of the classes' rates.
  Fleet(FleetProfile profile, int64_t num_clients, uint64_t run_seed,
        const std::string& assignment = "seeded", AvailabilityTrace trace = {});
  // The fleet of a config (fleet.* keys), or nullptr when fleet.profile is not set.
  static std::shared_ptr<const Fleet> from_config(const Config& cfg, int64_t num_clients,
                                                  uint64_t run_seed);

  const FleetProfile& profile() const { return profile_; }
  const DeviceClass& device_of(int64_t client) const;
  // Whether `client` can be asked in `round`, which starts `start_s` simulated seconds into the
  // run: online at start_s in the trace, or else a seeded draw against its class's availability.
  bool available(int64_t round, int64_t client, double start_s = 0) const;
  // When `client`, online at `t`, goes offline (simulated seconds; +infinity without a trace or
  // when it stays online for good).
  double online_until(int64_t client, double t) const;
  bool has_trace() const { return !trace_.online.empty(); }
  // The earliest time >= t at which some client is online in the trace (+infinity when none
  // ever is again, or without a trace).
  double next_online(double t) const;
  // The client's simulated round time for the bytes and multiply-adds given.
  double client_round_s(int64_t client, double bytes_down, double client_macs,
                        double bytes_up) const;
  // The server's training time for `server_macs` (0 when the profile does not time the server).
  double server_s(double server_macs) const;

 private:
  FleetProfile profile_;
  uint64_t seed_;
  std::vector<int> class_of_;
  AvailabilityTrace trace_;
};

}  // namespace fedpp
