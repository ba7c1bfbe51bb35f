// The simulated device fleet (runtime/fleet.hpp): profiles, class assignment, availability, the
// round-closing rule, and the simulation's clock checked by hand from the per-client record.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "fedpp/core/config.hpp"
#include "fedpp/core/error.hpp"
#include "fedpp/runtime/fleet.hpp"
#include "fedpp/runtime/simulation.hpp"
#include "toy.hpp"

using namespace fedpp;
using fedpp::toy::toy_config;
using fedpp::toy::toy_data;

namespace {

// Two classes with round figures: "fast" trains at 1e12 MAC/s on 1e6 B/s links with 0.5 s of
// latency, "slow" at 1e3 MAC/s on 1e4 B/s links with 2 s.
const char* kTwoClasses = R"(name = "two"
[[class]]
name = "fast"
compute_macs_per_s = 1e12
down_bytes_per_s = 1e6
up_bytes_per_s = 1e6
latency_s = 0.5
availability = 1.0
[[class]]
name = "slow"
compute_macs_per_s = 1e3
down_bytes_per_s = 1e4
up_bytes_per_s = 1e4
latency_s = 2.0
availability = 1.0
)";

std::string temp_dir(const std::string& name) {
  auto d = std::filesystem::temp_directory_path() /
           ("fedpp_fleet_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d.string();
}

std::string write(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
  return path;
}

std::vector<nlohmann::json> read_jsonl(const std::string& path) {
  std::ifstream in(path);
  std::vector<nlohmann::json> out;
  for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line));
  return out;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(Fleet, ClientRoundTimeIsLatencyPlusTransfersPlusCompute) {
  Fleet f(parse_fleet_profile(kTwoClasses, "test"), 2, 1, "seeded");
  const int64_t slow = f.device_of(0).name == "slow" ? 0 : 1;
  // 0.5 s + 2e6 B / 1e6 B/s + 3e12 MAC / 1e12 MAC/s + 5e5 B / 1e6 B/s = 0.5 + 2 + 3 + 0.5
  EXPECT_DOUBLE_EQ(f.client_round_s(1 - slow, 2e6, 3e12, 5e5), 6.0);
  // 2 s + 1e4 / 1e4 + 5e3 / 1e3 + 3e4 / 1e4 = 2 + 1 + 5 + 3
  EXPECT_DOUBLE_EQ(f.client_round_s(slow, 1e4, 5e3, 3e4), 11.0);
  EXPECT_DOUBLE_EQ(f.server_s(1e12), 0.0);  // no [server]: not timed
}

TEST(Fleet, CloseRoundKeepsTheFirstArrivalsWithinTheDeadline) {
  const std::vector<ClientTime> t = {{0, 5}, {1, 3}, {2, 9}};
  auto all = close_round(t, 3, 3, 0);  // everyone, no deadline: the slowest closes the round
  EXPECT_EQ(all.accepted, (std::vector<int64_t>{0, 1, 2}));
  EXPECT_TRUE(all.dropped.empty());
  EXPECT_DOUBLE_EQ(all.round_s, 9);
  auto late = close_round(t, 3, 3, 6);  // client 2 misses the deadline; the round waits for it
  EXPECT_EQ(late.accepted, (std::vector<int64_t>{0, 1}));
  EXPECT_EQ(late.dropped, (std::vector<int64_t>{2}));
  EXPECT_DOUBLE_EQ(late.round_s, 6);
  auto over = close_round(t, 3, 2, 0);  // over-selected: the first two arrivals close it
  EXPECT_EQ(over.accepted, (std::vector<int64_t>{0, 1}));
  EXPECT_EQ(over.dropped, (std::vector<int64_t>{2}));
  EXPECT_DOUBLE_EQ(over.round_s, 5);
  auto tie = close_round({{4, 2}, {1, 2}}, 2, 1, 0);  // a tie goes to the lower client id
  EXPECT_EQ(tie.accepted, (std::vector<int64_t>{1}));
  EXPECT_EQ(tie.dropped, (std::vector<int64_t>{4}));
  auto missing = close_round({{0, 1}}, 2, 2, 4);  // one never replied: the deadline closes it
  EXPECT_DOUBLE_EQ(missing.round_s, 4);
  EXPECT_DOUBLE_EQ(close_round({}, 0, 1, 7).round_s, 7);  // nobody online: the deadline
  EXPECT_DOUBLE_EQ(close_round({}, 0, 1, 0).round_s, 0);
}

TEST(Fleet, SeededAssignmentFollowsTheSharesAndTheSeed) {
  auto p = parse_fleet_profile(builtin_fleet_text("phones_4g"), "phones_4g");
  ASSERT_EQ(p.classes.size(), 3u);  // shares 0.2 / 0.5 / 0.3
  auto classes = [&](uint64_t seed) {
    Fleet f(p, 10, seed);
    std::vector<std::string> out;
    for (int64_t c = 0; c < 10; ++c) out.push_back(f.device_of(c).name);
    return out;
  };
  auto a = classes(1);
  std::map<std::string, int> n;
  for (const auto& c : a) n[c] += 1;
  EXPECT_EQ(n["phone_high"], 2);
  EXPECT_EQ(n["phone_mid"], 5);
  EXPECT_EQ(n["phone_low"], 3);
  EXPECT_EQ(classes(1), a);  // the same seed, the same devices
  EXPECT_NE(classes(2), a);
}

TEST(Fleet, AvailabilityIsASeededDrawAtTheClassRate) {
  std::string half = kTwoClasses;
  half.replace(half.rfind("availability = 1.0"), 18, "availability = 0.25");
  Fleet f(parse_fleet_profile(half, "half"), 1000, 7);
  int online_slow = 0, slow = 0;
  for (int64_t c = 0; c < 1000; ++c) {
    if (f.device_of(c).name == "fast") {
      EXPECT_TRUE(f.available(3, c));
      continue;
    }
    slow += 1;
    online_slow += f.available(3, c);
    EXPECT_EQ(f.available(3, c), f.available(3, c));
  }
  EXPECT_EQ(slow, 500);
  EXPECT_NEAR(online_slow / 500.0, 0.25, 0.06);
}

TEST(Fleet, BadProfilesAndAssignmentsAreClearErrors) {
  std::string missing = kTwoClasses;
  missing.erase(missing.find("up_bytes_per_s = 1e6\n"), 21);
  EXPECT_NE(error_of([&] { parse_fleet_profile(missing, "p"); }).find("'up_bytes_per_s' is missing"),
            std::string::npos);
  std::string zero = kTwoClasses;
  zero.replace(zero.find("compute_macs_per_s = 1e3"), 24, "compute_macs_per_s = 0");
  EXPECT_NE(error_of([&] { parse_fleet_profile(zero, "p"); }).find("compute_macs_per_s must be > 0"),
            std::string::npos);
  std::string typo = std::string(kTwoClasses) + "[[class]]\nname = \"x\"\nspeed = 3\n";
  EXPECT_NE(error_of([&] { parse_fleet_profile(typo, "p"); }).find("unknown field 'speed'"),
            std::string::npos);
  EXPECT_NE(error_of([] { builtin_fleet_text("phones_5g"); }).find("known: "), std::string::npos);
  for (const auto& name : builtin_fleet_names())
    EXPECT_NO_THROW(parse_fleet_profile(builtin_fleet_text(name), name)) << name;

  const auto dir = temp_dir("assign");
  auto p = parse_fleet_profile(kTwoClasses, "p");
  auto csv = write(dir + "/a.csv", "client,class\n0,fast\n1,medium\n");
  EXPECT_NE(error_of([&] { Fleet(p, 2, 1, csv); }).find("line 3: unknown device class 'medium'"),
            std::string::npos);
  csv = write(dir + "/b.csv", "0,fast\n0,slow\n");
  EXPECT_NE(error_of([&] { Fleet(p, 2, 1, csv); }).find("assigned twice"), std::string::npos);
  csv = write(dir + "/c.csv", "0,fast\n");
  EXPECT_NE(error_of([&] { Fleet(p, 2, 1, csv); }).find("no class to client 1"), std::string::npos);

  auto data = toy_data(2, 16);
  EXPECT_NE(error_of([&] { Simulation(toy_config("[sampling]\ndeadline_s = 5\n"), data); })
                .find("set fleet.profile"),
            std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST(Fleet, AnAlwaysOnlineFleetTrainsExactlyAsWithout) {
  const auto dir = temp_dir("same");
  auto profile = write(dir + "/two.toml", kTwoClasses);
  auto data = toy_data(4, 32);
  auto plain = Simulation(toy_config("[sampling]\nfraction = 0.5\n"), data).run();
  auto timed = Simulation(toy_config("[sampling]\nfraction = 0.5\n[fleet]\nprofile = \"" +
                                     profile + "\"\n"),
                          data)
                   .run();
  ASSERT_EQ(plain.size(), timed.size());
  for (size_t r = 0; r < plain.size(); ++r) {
    for (const char* k : {"accuracy", "loss", "fit_train_loss", "bytes_up", "client_macs"})
      EXPECT_EQ(plain[r].at(k), timed[r].at(k)) << k << " round " << r + 1;
    EXPECT_EQ(timed[r].at("dropped"), 0);
    EXPECT_EQ(timed[r].at("available"), 4);
    EXPECT_GT(timed[r].at("sim_round_s"), 0);
    EXPECT_FALSE(plain[r].count("sim_time_s"));
  }
  std::filesystem::remove_all(dir);
}

TEST(Fleet, SimulatedRoundTimesMatchTheClockByHand) {
  const auto dir = temp_dir("clock");
  auto profile = write(dir + "/two.toml", kTwoClasses);
  auto assign = write(dir + "/assign.csv", "client,class\n0,fast\n1,slow\n2,fast\n3,slow\n");
  auto run = [&](const std::string& name, const std::string& extra) {
    auto cfg = toy_config("[fleet]\nprofile = \"" + profile + "\"\nassignment = \"" + assign +
                          "\"\n" + extra + "\n");
    cfg.set("output.dir=\"" + dir + "/" + name + "\"");
    auto rows = Simulation(cfg, toy_data(4, 32)).run();
    return std::make_pair(rows, read_jsonl(dir + "/" + name + "/fleet.jsonl"));
  };
  // By hand: fast = 0.5 + down/1e6 + macs/1e12 + up/1e6; slow = 2 + down/1e4 + macs/1e3 + up/1e4.
  auto by_hand = [](const nlohmann::json& c) {
    const bool fast = c["class"] == "fast";
    const double lat = fast ? 0.5 : 2.0, link = fast ? 1e6 : 1e4, cpu = fast ? 1e12 : 1e3;
    return lat + c["bytes_down"].get<double>() / link + c["client_macs"].get<double>() / cpu +
           c["bytes_up"].get<double>() / link;
  };

  auto [rows, log] = run("all", "");
  ASSERT_EQ(log.size(), 3u);
  double total = 0;
  for (size_t r = 0; r < 3; ++r) {
    double slowest = 0;
    ASSERT_EQ(log[r]["clients"].size(), 4u);
    for (const auto& c : log[r]["clients"]) {
      EXPECT_NEAR(c["seconds"].get<double>(), by_hand(c), 1e-9 * by_hand(c));
      EXPECT_GT(c["client_macs"].get<double>(), 0);
      EXPECT_TRUE(c["kept"].get<bool>());
      slowest = std::max(slowest, by_hand(c));
    }
    total += slowest;
    EXPECT_NEAR(rows[r].at("sim_round_s"), slowest, 1e-9 * slowest);
    EXPECT_NEAR(rows[r].at("sim_time_s"), total, 1e-9 * total);
    EXPECT_EQ(rows[r].at("dropped"), 0);
  }

  // A deadline between the two classes (fast rounds take about 0.5 s, slow ones far longer):
  // the slow clients are dropped, the round lasts the deadline, only the fast ones aggregate.
  auto [late_rows, late_log] = run("deadline", "[sampling]\ndeadline_s = 30");
  ASSERT_GT(by_hand(log[0]["clients"][1]), 30);  // the premise: slow misses 30 s
  for (size_t r = 0; r < 3; ++r) {
    EXPECT_EQ(late_rows[r].at("dropped"), 2);
    EXPECT_EQ(late_rows[r].at("replies"), 2);
    EXPECT_DOUBLE_EQ(late_rows[r].at("sim_round_s"), 30);
    for (const auto& c : late_log[r]["clients"])
      EXPECT_EQ(c["kept"].get<bool>(), c["class"] == "fast") << c.dump();
  }
  EXPECT_NE(late_rows[2].at("loss"), rows[2].at("loss"));  // a different model

  // Over-selection: target 2 of 4, all 4 asked, the first two arrivals (the fast clients) kept.
  auto [over_rows, over_log] = run("over", "[sampling]\nfraction = 0.5\nover_select = 2");
  for (size_t r = 0; r < 3; ++r) {
    EXPECT_EQ(over_rows[r].at("clients"), 4);
    EXPECT_EQ(over_rows[r].at("dropped"), 2);
    double fastest_two = 0;
    for (const auto& c : over_log[r]["clients"]) {
      EXPECT_EQ(c["kept"].get<bool>(), c["class"] == "fast") << c.dump();
      if (c["class"] == "fast") fastest_two = std::max(fastest_two, by_hand(c));
    }
    EXPECT_NEAR(over_rows[r].at("sim_round_s"), fastest_two, 1e-9);
  }
  // The deadline run and the over-selected run keep the same clients with the same messages.
  EXPECT_EQ(over_rows[2].at("loss"), late_rows[2].at("loss"));
  std::filesystem::remove_all(dir);
}

TEST(Fleet, OnlyOnlineClientsAreSampled) {
  const auto dir = temp_dir("online");
  std::string half = kTwoClasses;
  half.replace(half.find("availability = 1.0"), 18, "availability = 0.5");
  half.replace(half.rfind("availability = 1.0"), 18, "availability = 0.5");
  auto profile = write(dir + "/half.toml", half);
  auto cfg = toy_config("[fleet]\nprofile = \"" + profile + "\"\n");
  cfg.set("output.dir=\"" + dir + "/run\"");
  cfg.set("rounds=4");
  auto rows = Simulation(cfg, toy_data(12, 16)).run();
  auto log = read_jsonl(dir + "/run/fleet.jsonl");
  Fleet f(parse_fleet_profile(half, "half"), 12, 3);  // seed 3, as toy_config
  for (int64_t r = 1; r <= 4; ++r) {
    std::vector<int64_t> online, asked;
    for (int64_t c = 0; c < 12; ++c)
      if (f.available(r, c)) online.push_back(c);
    for (const auto& c : log[static_cast<size_t>(r - 1)]["clients"])
      asked.push_back(c["client"].get<int64_t>());
    EXPECT_EQ(asked, online) << "round " << r;  // fraction 1: every online client, no other
    EXPECT_EQ(rows[static_cast<size_t>(r - 1)].at("available"), static_cast<double>(online.size()));
    EXPECT_EQ(rows[static_cast<size_t>(r - 1)].at("clients"), static_cast<double>(online.size()));
  }
  std::filesystem::remove_all(dir);
}

TEST(Fleet, AvailabilityTracesParseMergeRepeatAndRefuseBadLines) {
  auto t = parse_availability_trace("client,from_s,until_s\n0,10,20\n0,15,30\n0,90,100\n0,0,5\n"
                                    "1,0,0\n",
                                    "t.csv", 2, 100);
  ASSERT_EQ(t.online.size(), 2u);
  EXPECT_EQ(t.online[0], (std::vector<std::pair<double, double>>{{0, 5}, {10, 30}, {90, 100}}));
  EXPECT_TRUE(t.online[1].empty());  // listed, never online
  Fleet f(parse_fleet_profile(kTwoClasses, "two"), 2, 3, "seeded", t);
  EXPECT_TRUE(f.available(1, 0, 15));
  EXPECT_EQ(f.online_until(0, 15), 30);
  EXPECT_FALSE(f.available(1, 0, 50));
  EXPECT_EQ(f.online_until(0, 50), 50);        // offline: "until" is now
  EXPECT_EQ(f.online_until(0, 1015), 1030);    // the period repeats
  EXPECT_EQ(f.online_until(0, 195), 205);      // online through the period's end into [0, 5)
  EXPECT_FALSE(f.available(1, 1, 0));
  Fleet once(parse_fleet_profile(kTwoClasses, "two"), 2, 3, "seeded",
             parse_availability_trace("0,10,20\n1,0,1e9\n", "t.csv", 2));
  EXPECT_FALSE(once.available(1, 0, 115));     // no period: after its last line, offline
  EXPECT_EQ(once.online_until(1, 5), 1e9);

  auto err = [](const std::string& csv, double period = 0) {
    return error_of([&] { parse_availability_trace(csv, "t.csv", 2, period); });
  };
  EXPECT_NE(err("0,1,2\n").find("no line for client 1"), std::string::npos);
  EXPECT_NE(err("0,1,2\n1,5\n").find("line 2: expected 'client,from_s,until_s'"), std::string::npos);
  EXPECT_NE(err("0,1,2\n1,x,3\n").find("from_s 'x' is not a number"), std::string::npos);
  EXPECT_NE(err("0,1,2\n1,-1,3\n").find("from_s '-1'"), std::string::npos);
  EXPECT_NE(err("0,3,2\n1,0,1\n").find("line 1: from_s"), std::string::npos);
  EXPECT_NE(err("0,1,2\n2,0,1\n").find("client 2 is out of range"), std::string::npos);
  EXPECT_NE(err("0,1,200\n1,0,1\n", 100).find("exceeds fleet.trace_period_s"), std::string::npos);
  EXPECT_NE(err("0,1,2,3\n1,0,1\n").find("expected 'client,from_s,until_s'"), std::string::npos);
  auto fifo = toy_config("[fleet]\nprofile = \"phones_4g\"\ntrace = \"/dev/zero\"\n");
  EXPECT_NE(error_of([&] { Simulation(fifo, toy_data(2, 8)).run(); }).find("is not a readable file"),
            std::string::npos);  // a device, not a file: refused before reading a byte
  auto cfg = toy_config("[fleet]\ntrace = \"t.csv\"\n");
  EXPECT_NE(error_of([&] { Simulation(cfg, toy_data(2, 8)).run(); })
                .find("fleet.trace is set but fleet.profile is not"),
            std::string::npos);
}

// Who is online follows the simulated clock: client 2 is never online, client 3 (a slow device)
// is online only for the first second, so it is asked in round 1 but goes offline before its
// reply would arrive (dropped, "left"), and is not asked again; 0 and 1 are always online.
TEST(Fleet, ATraceDecidesWhoIsAskedAndWhoLeavesMidRound) {
  const auto dir = temp_dir("trace");
  auto profile = write(dir + "/two.toml", kTwoClasses);
  auto assign = write(dir + "/assign.csv", "0,fast\n1,slow\n2,fast\n3,slow\n");
  auto trace = write(dir + "/trace.csv", "0,0,1e12\n1,0,1e12\n2,0,0\n3,0,1\n");
  auto cfg = toy_config("[fleet]\nprofile = \"" + profile + "\"\nassignment = \"" + assign +
                        "\"\ntrace = \"" + trace + "\"\n");
  cfg.set("output.dir=\"" + dir + "/run\"");
  auto rows = Simulation(cfg, toy_data(4, 32)).run();
  auto log = read_jsonl(dir + "/run/fleet.jsonl");
  ASSERT_EQ(rows.size(), 3u);
  std::vector<int64_t> asked;
  for (const auto& c : log[0]["clients"]) asked.push_back(c["client"].get<int64_t>());
  EXPECT_EQ(asked, (std::vector<int64_t>{0, 1, 3}));
  EXPECT_EQ(rows[0].at("available"), 3);
  EXPECT_EQ(rows[0].at("dropped"), 1);
  EXPECT_EQ(rows[0].at("replies"), 2);
  double slowest_kept = 0;
  for (const auto& c : log[0]["clients"]) {
    const bool left = c.contains("left") && c["left"].get<bool>();
    EXPECT_EQ(left, c["client"] == 3) << c.dump();
    EXPECT_EQ(c["kept"].get<bool>(), !left) << c.dump();
    if (!left) slowest_kept = std::max(slowest_kept, c["seconds"].get<double>());
  }
  EXPECT_GT(log[0]["clients"][2]["seconds"].get<double>(), 1.0);  // the premise: 3 needs > 1 s
  EXPECT_DOUBLE_EQ(rows[0].at("sim_round_s"), slowest_kept);
  for (size_t r = 1; r < 3; ++r) {
    EXPECT_EQ(rows[r].at("available"), 2);
    EXPECT_EQ(rows[r].at("dropped"), 0);
    EXPECT_EQ(log[r]["clients"].size(), 2u);
  }
  std::filesystem::remove_all(dir);
}

// Departures close a round that misses its target once every asked client has arrived or left;
// nobody online makes the clock wait for the first to come online; nobody ever again is an error.
TEST(Fleet, ATraceNeverStallsTheClock) {
  auto r = close_round({{0, 1.0}}, 2, 2, 0.0, {{1, 0.5}});
  EXPECT_EQ(r.accepted, std::vector<int64_t>{0});
  EXPECT_EQ(r.dropped, std::vector<int64_t>{1});
  EXPECT_DOUBLE_EQ(r.round_s, 1.0);
  EXPECT_DOUBLE_EQ(close_round({}, 1, 1, 0.0, {{0, 0.7}}).round_s, 0.7);  // all left: 0.7 s
  EXPECT_DOUBLE_EQ(close_round({}, 1, 1, 0.5, {{0, 0.7}}).round_s, 0.5);  // the deadline first
  EXPECT_DOUBLE_EQ(close_round({{0, 0.2}}, 2, 2, 9.0, {{1, 0.3}}).round_s, 0.3);

  Fleet f(parse_fleet_profile(kTwoClasses, "two"), 2, 3, "seeded",
          parse_availability_trace("0,40,50\n1,70,80\n", "t.csv", 2, 100));
  EXPECT_EQ(f.next_online(10), 40);
  EXPECT_EQ(f.next_online(45), 45);
  EXPECT_EQ(f.next_online(85), 140);   // the next period
  EXPECT_EQ(f.next_online(275), 275);  // client 1 is online then (phase 75)
  EXPECT_EQ(f.next_online(285), 340);
  Fleet once(parse_fleet_profile(kTwoClasses, "two"), 2, 3, "seeded",
             parse_availability_trace("0,40,50\n1,0,0\n", "t.csv", 2));
  EXPECT_TRUE(std::isinf(once.next_online(50)));

  const auto dir = temp_dir("wait");
  auto profile = write(dir + "/two.toml", kTwoClasses);
  auto assign = write(dir + "/assign.csv", "0,fast\n1,fast\n");
  auto run = [&](const std::string& trace_text, const std::string& name) {
    auto trace = write(dir + "/" + name + ".csv", trace_text);
    auto cfg = toy_config("[fleet]\nprofile = \"" + profile + "\"\nassignment = \"" + assign +
                          "\"\ntrace = \"" + trace + "\"\n");
    cfg.set("output.dir=\"" + dir + "/" + name + "\"");
    return Simulation(cfg, toy_data(2, 16)).run();
  };
  // Both devices come online at 100 s: round 1 waits 100 s, then runs with both.
  auto rows = run("0,100,1e12\n1,100,1e12\n", "late");
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].at("available"), 2);
  EXPECT_GT(rows[0].at("sim_round_s"), 100);
  EXPECT_LT(rows[1].at("sim_round_s"), 100);
  // Both devices are online for the first second only: a round that starts later has nobody.
  auto err = error_of([&] { run("0,0,1\n1,0,1\n", "gone"); });
  EXPECT_NE(err.find("fleet.trace: no client is online at or after"), std::string::npos) << err;
  std::filesystem::remove_all(dir);
}
