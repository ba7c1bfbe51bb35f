#include "fedpp/report/run_writer.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "fedpp/core/error.hpp"
#include "fedpp/core/files.hpp"

namespace fedpp {

namespace fs = std::filesystem;

namespace {
const char* kHint = "set output.dir to a writable place with free space";

// Keeps the lines of a JSON-lines file whose "round" is at most `last` (resuming a run); a line
// that is not such an object ends the kept part (a line cut short when the run died).
void keep_rounds_through(const std::string& path, int64_t last) {
  std::ifstream in(path);
  if (!in) return;
  std::string kept, line;
  while (std::getline(in, line)) {
    const auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("round") ||
        !j["round"].is_number_integer())
      break;
    if (j["round"].get<int64_t>() <= last) kept += line + "\n";
  }
  in.close();
  write_file_atomic(path, kept, kHint);
}
}  // namespace

RunWriter::RunWriter(std::string dir, int64_t resumed_after) : dir_(std::move(dir)) {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  FEDPP_CHECK(!ec, "cannot create results folder '" + dir_ + "': " + ec.message() +
                       " (set output.dir to a writable place)");
  fs::remove(dir_ + "/metrics.jsonl");
  for (const char* f : {"/clients.jsonl", "/fleet.jsonl"}) {
    if (resumed_after > 0)
      keep_rounds_through(dir_ + f, resumed_after);
    else
      fs::remove(dir_ + f);
  }
}

void RunWriter::write_text(const std::string& file, const std::string& text) const {
  write_file_atomic(dir_ + "/" + file, text, kHint);
}

namespace {
nlohmann::json row_json(const Row& row) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [k, v] : row) {
    if (std::isfinite(v) && v == std::floor(v) && std::fabs(v) < 9e15)
      j[k] = static_cast<int64_t>(v);
    else
      j[k] = v;
  }
  return j;
}
}  // namespace

void RunWriter::append_round(const Row& row) {
  rows_.push_back(row);
  append_file(dir_ + "/metrics.jsonl", row_json(row).dump() + "\n", kHint);
  std::set<std::string> keys;
  for (const auto& r : rows_)
    for (const auto& [k, v] : r) keys.insert(k);
  keys.erase("round");
  std::ostringstream csv;
  csv << "round";
  for (const auto& k : keys) csv << "," << k;
  csv << "\n" << std::setprecision(10);
  for (const auto& r : rows_) {
    csv << static_cast<int64_t>(r.at("round"));
    for (const auto& k : keys) {
      csv << ",";
      auto it = r.find(k);
      if (it != r.end()) csv << it->second;
    }
    csv << "\n";
  }
  write_file_atomic(dir_ + "/metrics.csv", csv.str(), kHint);
}

void RunWriter::append_line(const std::string& file, const std::string& json) {
  append_file(dir_ + "/" + file, json + "\n", kHint);
}

void RunWriter::append_clients(int64_t round, const std::vector<Row>& per_client) {
  nlohmann::json j;
  j["round"] = round;
  j["clients"] = nlohmann::json::array();
  for (const auto& r : per_client) j["clients"].push_back(row_json(r));
  append_file(dir_ + "/clients.jsonl", j.dump() + "\n", kHint);
}

namespace {
// metrics.csv as rows (an empty cell is a missing value).
std::vector<Row> read_csv_rows(const std::string& path) {
  std::ifstream in(path);
  FEDPP_CHECK(in.good(), "no results at '" + path + "': give the folder of a finished run");
  auto split = [](const std::string& line) {
    std::vector<std::string> out;
    std::stringstream ss(line);
    std::string cell;
    while (std::getline(ss, cell, ',')) out.push_back(cell);
    if (!line.empty() && line.back() == ',') out.emplace_back();
    return out;
  };
  std::string line;
  FEDPP_CHECK(static_cast<bool>(std::getline(in, line)), path + " is empty");
  const auto header = split(line);
  std::vector<Row> rows;
  int lineno = 1;
  while (std::getline(in, line)) {
    ++lineno;
    if (line.empty()) continue;
    auto cells = split(line);
    FEDPP_CHECK(cells.size() == header.size(),
                path + " line " + std::to_string(lineno) + " has " + std::to_string(cells.size()) +
                    " cells, the header " + std::to_string(header.size()));
    Row r;
    for (size_t i = 0; i < cells.size(); ++i) {
      if (cells[i].empty()) continue;
      char* end = nullptr;
      double v = std::strtod(cells[i].c_str(), &end);
      FEDPP_CHECK(end && *end == '\0', path + " line " + std::to_string(lineno) + ": '" +
                                           cells[i] + "' in column " + header[i] +
                                           " is not a number");
      r[header[i]] = v;
    }
    rows.push_back(std::move(r));
  }
  return rows;
}
}  // namespace

std::vector<Row> read_rows(const std::string& run_dir) {
  std::string path = run_dir + "/metrics.jsonl";
  if (!fs::exists(path) && fs::exists(run_dir + "/metrics.csv"))
    return read_csv_rows(run_dir + "/metrics.csv");  // e.g. a committed sweep result
  std::ifstream in(path);
  FEDPP_CHECK(in.good(), "no results at '" + path + "': give the folder of a finished run");
  std::vector<Row> rows;
  std::string line;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (line.empty()) continue;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const std::exception& e) {
      throw Error(path + " line " + std::to_string(lineno) + " is not JSON: " + e.what());
    }
    Row r;
    for (auto it = j.begin(); it != j.end(); ++it)
      if (it->is_number()) r[it.key()] = it->get<double>();
    rows.push_back(std::move(r));
  }
  return rows;
}

namespace {
// The seed folders of a sweep result (<run>/seed<N>/metrics.csv), sorted; empty for a plain run.
std::vector<std::string> seed_folders(const std::string& dir) {
  std::vector<std::string> out;
  if (fs::exists(dir + "/metrics.csv") || fs::exists(dir + "/metrics.jsonl") || !fs::is_directory(dir))
    return out;
  for (const auto& e : fs::directory_iterator(dir)) {
    const auto name = e.path().filename().string();
    if (e.is_directory() && name.rfind("seed", 0) == 0 && name.find('.') == std::string::npos &&
        fs::exists(e.path() / "metrics.csv"))
      out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string axis_name(const std::string& col) {
  if (col == "accuracy") return "accuracy on the global test set";
  if (col == "personal_accuracy_mean") return "personalised accuracy (mean over clients)";
  std::string s = col;
  std::replace(s.begin(), s.end(), '_', ' ');
  return s;
}

// gnuplot single-quoted string.
std::string quoted(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}
}  // namespace

std::vector<std::string> plot_runs(const std::vector<std::string>& run_dirs,
                                   const std::string& out_dir, const std::string& metric) {
  FEDPP_CHECK(!run_dirs.empty(), "report needs at least one run folder");
  fs::create_directories(out_dir);
  std::ostringstream round_plot, bytes_plot, time_plot;
  std::string ylabel;
  bool timed = true;  // every run has a simulated clock (fleet.profile): plot against it too
  // A plain run folder is one curve; a sweep folder (seed*/ inside) is its mean with a band of
  // +- one standard deviation over the seeds, over the rounds every seed has. Each folder's
  // runs, read once.
  std::vector<std::vector<std::vector<Row>>> folders;
  for (const auto& dir : run_dirs) {
    auto seeds = seed_folders(dir);
    auto& runs = folders.emplace_back();
    if (seeds.empty()) runs.push_back(read_rows(dir));
    for (const auto& s : seeds) runs.push_back(read_rows(s));
  }
  // "auto": personalised accuracy when every run has it, else global accuracy for all of them
  // (one column under one axis label, never a mix).
  std::string col = metric;
  if (metric == "auto") {
    col = "personal_accuracy_mean";
    for (const auto& runs : folders)
      if (std::none_of(runs[0].begin(), runs[0].end(),
                       [](const Row& r) { return r.count("personal_accuracy_mean") > 0; }))
        col = "accuracy";
  }
  for (size_t i = 0; i < run_dirs.size(); ++i) {
    const auto& runs = folders[i];
    ylabel = axis_name(col);
    // round -> values, cumulative bytes and simulated seconds, over runs
    struct Point {
      std::vector<double> value, bytes, sim_s;
    };
    std::map<double, Point> points;
    for (const auto& rows : runs) {
      double bytes = 0;
      for (const auto& r : rows) {
        auto b = r.find("bytes_down"), u = r.find("bytes_up");
        bytes += (b != r.end() ? b->second : 0) + (u != r.end() ? u->second : 0);
        auto a = r.find(col);
        if (a == r.end() || !r.count("round")) continue;
        auto t = r.find("sim_time_s");
        timed = timed && t != r.end();
        Point& p = points[r.at("round")];
        p.value.push_back(a->second);
        p.bytes.push_back(bytes);
        p.sim_s.push_back(t != r.end() ? t->second : 0.0);
      }
    }
    std::string data = out_dir + "/run" + std::to_string(i) + ".dat";
    std::ofstream d(data);
    d << "# round mean(" << col << ") mean-sd mean+sd mean_cumulative_bytes_MB "
      << "mean_simulated_minutes (over " << runs.size() << " run(s))\n"
      << std::setprecision(10);
    int n_points = 0;
    for (const auto& [round, p] : points) {
      const auto& v = p.value;
      if (v.size() != runs.size()) continue;  // a round not every seed has
      double m = 0, sd = 0, mb = 0, mt = 0;
      for (size_t k = 0; k < v.size(); ++k) m += v[k], mb += p.bytes[k], mt += p.sim_s[k];
      m /= static_cast<double>(v.size());
      mb /= static_cast<double>(v.size());
      mt /= static_cast<double>(v.size());
      for (double x : v) sd += (x - m) * (x - m);
      sd = v.size() > 1 ? std::sqrt(sd / static_cast<double>(v.size() - 1)) : 0.0;
      d << round << " " << m << " " << m - sd << " " << m + sd << " " << mb / 1e6 << " "
        << mt / 60 << "\n";
      ++n_points;
    }
    FEDPP_CHECK(n_points > 0, "run '" + run_dirs[i] + "' has no '" + col + "' column to plot");
    std::string title = fs::path(run_dirs[i]).filename().string();
    if (title.empty()) title = fs::path(run_dirs[i]).parent_path().filename().string();
    if (runs.size() > 1) title += " (" + std::to_string(runs.size()) + " seeds)";
    const std::string sep = i ? ", " : "plot ";
    const std::string lc = " lc " + std::to_string(i + 1);
    if (runs.size() > 1) {
      round_plot << sep << quoted(data) << " using 1:3:4 with filledcurves fs transparent solid "
                 << "0.2 noborder" << lc << " notitle";
      bytes_plot << sep << quoted(data) << " using 5:3:4 with filledcurves fs transparent solid "
                 << "0.2 noborder" << lc << " notitle";
      time_plot << sep << quoted(data) << " using 6:3:4 with filledcurves fs transparent solid "
                << "0.2 noborder" << lc << " notitle";
    }
    const std::string sep2 = runs.size() > 1 ? ", " : sep;
    round_plot << sep2 << quoted(data) << " using 1:2 with linespoints pt 7 ps 0.5 lw 2" << lc
               << " title " << quoted(title);
    bytes_plot << sep2 << quoted(data) << " using 5:2 with linespoints pt 7 ps 0.5 lw 2" << lc
               << " title " << quoted(title);
    time_plot << sep2 << quoted(data) << " using 6:2 with linespoints pt 7 ps 0.5 lw 2" << lc
              << " title " << quoted(title);
  }
  std::string script = out_dir + "/plots.gp";
  std::ofstream gp(script);
  // noenhanced: names with underscores print as they are; the key sits right of the plot.
  gp << "set terminal pngcairo size 1100,600 noenhanced\nset grid\n"
     << "set key outside right top vertical noenhanced\n"
     << "set ylabel " << quoted(ylabel) << "\n"
     << "set output " << quoted(out_dir + "/accuracy_vs_round.png") << "\nset xlabel 'round'\n"
     << round_plot.str() << "\n"
     << "set output " << quoted(out_dir + "/accuracy_vs_bytes.png") << "\n"
     << "set xlabel 'bytes exchanged, up + down, cumulative (MB)'\nset logscale x\n"
     << bytes_plot.str() << "\n";
  if (timed)
    gp << "set output " << quoted(out_dir + "/accuracy_vs_sim_time.png") << "\n"
       << "set xlabel 'simulated time on the fleet, cumulative (minutes)'\nset logscale x\n"
       << time_plot.str() << "\n";
  gp.close();
  std::string cmd = "gnuplot '" + script + "' 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  FEDPP_CHECK(p, "cannot run gnuplot: install it (apt-get install gnuplot-nox)");
  std::string out;
  char buf[256];
  while (fgets(buf, sizeof buf, p)) out += buf;
  int rc = pclose(p);
  FEDPP_CHECK(rc == 0, "gnuplot failed" + (out.empty() ? std::string() : ": " + out) +
                           " (is gnuplot-nox installed? apt-get install gnuplot-nox)");
  std::vector<std::string> pngs = {out_dir + "/accuracy_vs_round.png",
                                   out_dir + "/accuracy_vs_bytes.png"};
  if (timed) pngs.push_back(out_dir + "/accuracy_vs_sim_time.png");
  return pngs;
}

}  // namespace fedpp
