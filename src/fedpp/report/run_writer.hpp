// RunWriter — the results folder of one run:
//   config.toml / config.json   the resolved config (every key, defaults filled in)
//   partition.json              samples and classes per client
//   metrics.jsonl               one JSON object per round (appended as rounds finish)
//   metrics.csv                 the same rows as CSV (columns: the union of all keys, sorted,
//                               "round" first; rewritten after every round)
//   clients.jsonl               per-client personalised evaluation, one object per eval round
//   fleet.jsonl                 with a simulated fleet: per round, the clients online, each
//                               replying client's class, bytes, multiply-adds, simulated seconds
//                               and whether it was kept, the clients' part of the round (clients_s)
//                               and the server's training time (server_s)
// Timing columns end in "_s"; everything else repeats exactly for the same config and seed.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace fedpp {

using Row = std::map<std::string, double>;

class RunWriter {
 public:
  // Creates `dir` (and parents). The metrics, clients and fleet files of an earlier run there
  // are replaced; when `resumed_after` > 0 (a run resumed from its checkpoint after that round)
  // the clients and fleet lines of rounds 1..resumed_after are kept, and the caller appends the
  // checkpoint's rows again with append_round.
  explicit RunWriter(std::string dir, int64_t resumed_after = 0);
  const std::string& dir() const { return dir_; }
  void write_text(const std::string& file, const std::string& text) const;
  void append_round(const Row& row);
  void append_clients(int64_t round, const std::vector<Row>& per_client);
  // Appends one line (a JSON object, without the newline) to `file` in the folder.
  void append_line(const std::string& file, const std::string& json);
  const std::vector<Row>& rows() const { return rows_; }

 private:
  std::string dir_;
  std::vector<Row> rows_;
};

// Reads metrics.jsonl of a run folder (for `fedpp report`), or its metrics.csv when that is all
// it has (a committed sweep result). Throws fedpp::Error naming the file when it is missing or
// malformed.
std::vector<Row> read_rows(const std::string& run_dir);

// Writes accuracy-vs-round and accuracy-vs-bytes plots (PNG) comparing runs, and
// accuracy-vs-simulated-time when every run has a fleet's clock (sim_time_s), plus the gnuplot
// script and data next to them, into out_dir. Each folder is a run, or a sweep folder holding
// seed*/ runs (scripts/sweep.py): drawn as the mean over seeds with a band of +- one standard
// deviation. `metric` is the accuracy column to plot ("accuracy" or "personal_accuracy_mean";
// "auto": personal_accuracy_mean when every run has it, else accuracy, the same for all).
// Needs gnuplot (Debian package gnuplot-nox); returns the PNG paths.
std::vector<std::string> plot_runs(const std::vector<std::string>& run_dirs,
                                   const std::string& out_dir, const std::string& metric);

}  // namespace fedpp
