#include "fedpp/report/run_writer.hpp"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "fedpp/core/error.hpp"

namespace fedpp {

namespace fs = std::filesystem;

RunWriter::RunWriter(std::string dir) : dir_(std::move(dir)) {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  FEDPP_CHECK(!ec, "cannot create results folder '" + dir_ + "': " + ec.message() +
                       " (set output.dir to a writable place)");
  fs::remove(dir_ + "/metrics.jsonl");
  fs::remove(dir_ + "/clients.jsonl");
}

void RunWriter::write_text(const std::string& file, const std::string& text) const {
  std::ofstream out(dir_ + "/" + file);
  out << text;
  FEDPP_CHECK(out.good(), "cannot write " + dir_ + "/" + file);
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
  {
    std::ofstream out(dir_ + "/metrics.jsonl", std::ios::app);
    out << row_json(row).dump() << "\n";
  }
  std::set<std::string> keys;
  for (const auto& r : rows_)
    for (const auto& [k, v] : r) keys.insert(k);
  keys.erase("round");
  std::ofstream csv(dir_ + "/metrics.csv");
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
}

void RunWriter::append_clients(int64_t round, const std::vector<Row>& per_client) {
  nlohmann::json j;
  j["round"] = round;
  j["clients"] = nlohmann::json::array();
  for (const auto& r : per_client) j["clients"].push_back(row_json(r));
  std::ofstream out(dir_ + "/clients.jsonl", std::ios::app);
  out << j.dump() << "\n";
}

std::vector<Row> read_rows(const std::string& run_dir) {
  std::string path = run_dir + "/metrics.jsonl";
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

std::vector<std::string> plot_runs(const std::vector<std::string>& run_dirs,
                                   const std::string& out_dir, const std::string& metric) {
  FEDPP_CHECK(!run_dirs.empty(), "report needs at least one run folder");
  fs::create_directories(out_dir);
  std::ostringstream round_plot, bytes_plot;
  std::string ylabel;
  for (size_t i = 0; i < run_dirs.size(); ++i) {
    auto rows = read_rows(run_dirs[i]);
    std::string col = metric;
    if (col == "auto") {
      col = "accuracy";
      for (const auto& r : rows)
        if (r.count("personal_accuracy_mean")) col = "personal_accuracy_mean";
    }
    ylabel = col;
    std::string data = out_dir + "/run" + std::to_string(i) + ".dat";
    std::ofstream d(data);
    d << "# round " << col << " cumulative_bytes_total\n" << std::setprecision(10);
    double bytes = 0;
    int points = 0;
    for (const auto& r : rows) {
      auto b = r.find("bytes_down"), u = r.find("bytes_up");
      bytes += (b != r.end() ? b->second : 0) + (u != r.end() ? u->second : 0);
      auto a = r.find(col);
      if (a == r.end()) continue;
      d << r.at("round") << " " << a->second << " " << bytes / 1e6 << "\n";
      ++points;
    }
    FEDPP_CHECK(points > 0, "run '" + run_dirs[i] + "' has no '" + col + "' column to plot");
    std::string title = fs::path(run_dirs[i]).filename().string();
    if (title.empty()) title = fs::path(run_dirs[i]).parent_path().filename().string();
    std::string sep = i ? ", " : "plot ";
    round_plot << sep << "'" << data << "' using 1:2 with linespoints title '" << title << "'";
    bytes_plot << sep << "'" << data << "' using 3:2 with linespoints title '" << title << "'";
  }
  std::string script = out_dir + "/plots.gp";
  std::ofstream gp(script);
  gp << "set terminal pngcairo size 900,600\nset grid\nset key bottom right\n"
     << "set ylabel '" << ylabel << "'\n"
     << "set output '" << out_dir << "/accuracy_vs_round.png'\nset xlabel 'round'\n"
     << round_plot.str() << "\n"
     << "set output '" << out_dir << "/accuracy_vs_bytes.png'\n"
     << "set xlabel 'bytes exchanged, up + down (MB, cumulative)'\nset logscale x\n"
     << bytes_plot.str() << "\n";
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
  return {out_dir + "/accuracy_vs_round.png", out_dir + "/accuracy_vs_bytes.png"};
}

}  // namespace fedpp
