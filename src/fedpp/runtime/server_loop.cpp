#include "fedpp/runtime/server_loop.hpp"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>

#include "fedpp/core/error.hpp"
#include "fedpp/core/seed.hpp"
#include "fedpp/fl/wire.hpp"
#include "fedpp/models/state_dict.hpp"
#include "fedpp/runtime/sampling.hpp"

namespace fedpp {

// Config key of a reply that reports a failed fit (ClientRunner::fit) instead of an update.
constexpr const char* kFitErrorKey = "fit_error";

namespace {
double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}
uint64_t u(int64_t v) { return static_cast<uint64_t>(v); }

// Metric names become CSV columns and JSON keys: letters, digits, '_' and '.', 1 to 64 long.
bool safe_name(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  for (unsigned char c : name)
    if (!(std::isalnum(c) || c == '_' || c == '.')) return false;
  return true;
}

// "" when every metric of a reply has a safe name and a finite value, else the reason.
std::string bad_metric(const std::map<std::string, double>& metrics) {
  for (const auto& [k, v] : metrics) {
    if (!safe_name(k)) return "a metric name is not [A-Za-z0-9_.]{1,64}";
    if (!std::isfinite(v)) return "metric '" + k + "' is not finite";
  }
  return "";
}
}  // namespace

uint64_t down_seed(uint64_t s, int64_t r, int64_t c) {
  return derive_seed(s, Purpose::kCodecDown, {u(r), u(c)});
}
uint64_t up_seed(uint64_t s, int64_t r, int64_t c) {
  return derive_seed(s, Purpose::kCodecUp, {u(r), u(c)});
}
uint64_t eval_seed(uint64_t s, int64_t r, int64_t c) {
  return derive_seed(s, Purpose::kCodecDown, {u(r), u(c), 1});
}
uint64_t fit_seed(uint64_t s, int64_t r, int64_t c) {
  return derive_seed(s, Purpose::kShuffle, {u(r), u(c)});
}

RunOptions RunOptions::from_config(const Config& cfg) {
  RunOptions o;
  o.seed = static_cast<uint64_t>(cfg.get_int("seed", 1, 0));
  o.algorithm = cfg.get_string("algorithm.name", "fedavg");
  const auto& info = find_algorithm(o.algorithm);
  o.rounds = cfg.get_int("rounds", o.rounds, 1, 1000000);
  o.fraction = cfg.get_double("sampling.fraction", o.fraction, 1e-9, 1.0);
  o.over_select = cfg.get_double("sampling.over_select", o.over_select, 1.0, 100.0);
  o.deadline_s = cfg.get_double("sampling.deadline_s", o.deadline_s, 0.0, 1e7);
  o.eval_every = cfg.get_int("eval.every", o.eval_every, 0, 1000000);
  auto pers = cfg.get_choice("eval.personalized", "auto", {"auto", "true", "false"});
  o.personalized = pers == "auto" ? info.personalized : pers == "true";
  o.output_dir = cfg.get_string("output.dir", "");
  o.quiet = cfg.get_bool("output.quiet", false);
  o.progress_s = cfg.get_double("output.progress_s", o.progress_s, 0.0, 1e6);
  o.save_model_every = cfg.get_int("output.save_model_every", 0, 0, 1000000);
  o.save_client_models = cfg.get_bool("output.save_client_models", false);
  o.checkpoint_every = cfg.get_int("output.checkpoint_every", 0, 0, 1000000);
  o.max_decoded_bytes =
      cfg.get_int("deploy.max_decoded_bytes", o.max_decoded_bytes, 1024, int64_t{1} << 40);
  o.down = codec_spec_from_config(cfg, "codec.down");
  o.up = codec_spec_from_config(cfg, "codec.up");
  auto device = cfg.get_choice("runtime.device", "cpu", {"cpu", "cuda"});
  FEDPP_CHECK(device == "cpu" || torch::cuda::is_available(),
              "runtime.device = \"cuda\" but this LibTorch sees no CUDA device: use \"cpu\"");
  o.device = torch::Device(device == "cuda" ? torch::kCUDA : torch::kCPU);
  return o;
}

ServerLoop::ServerLoop(const Config& cfg, const RunOptions& opt, const AlgorithmInfo& info,
                       const AlgorithmSetup& setup, Dataset test)
    : cfg_(cfg), opt_(opt), setup_(setup), test_(std::move(test)), down_(opt.down), up_(opt.up) {
  server_ = info.make_server(setup_);
}

ServerLoop::~ServerLoop() = default;

void ServerLoop::open_results(const std::string& partition_json, int64_t resumed_after) {
  if (opt_.output_dir.empty()) return;
  writer_ = std::make_unique<RunWriter>(opt_.output_dir, resumed_after);
  writer_->write_text("config.toml", cfg_.resolved_toml());
  writer_->write_text("config.json", cfg_.resolved_json());
  if (!partition_json.empty()) writer_->write_text("partition.json", partition_json);
}

void ServerLoop::restore_results(const std::vector<Row>& rows) {
  if (writer_)
    for (const auto& r : rows) writer_->append_round(r);
  if (!rows.empty())
    if (auto it = rows.back().find("sim_time_s"); it != rows.back().end()) sim_time_s_ = it->second;
}

int64_t ServerLoop::target_replies() const {
  const int64_t n = setup_.num_clients;
  return std::min(n, std::max<int64_t>(1, std::llround(opt_.fraction * static_cast<double>(n))));
}

std::vector<Task> ServerLoop::begin_round(int64_t round) {
  round_ = round;
  t0_ = std::chrono::steady_clock::now();
  // Over-selection: ceil(over_select * target) of the clients online (all without a fleet).
  const auto want = static_cast<int64_t>(
      std::ceil(opt_.over_select * static_cast<double>(target_replies()) - 1e-9));
  // With an availability trace and nobody online, the clock waits for the first to come online.
  wait_s_ = 0;
  if (fleet_ && fleet_->has_trace()) {
    const double next = fleet_->next_online(sim_time_s_);
    FEDPP_CHECK(std::isfinite(next),
                "fleet.trace: no client is online at or after " + std::to_string(sim_time_s_) +
                    " simulated seconds, so round " + std::to_string(round) +
                    " and every later one would be empty: extend the trace, repeat it "
                    "(fleet.trace_period_s) or run fewer rounds");
    wait_s_ = next - sim_time_s_;
  }
  const double start_s = sim_time_s_ + wait_s_;
  std::vector<int64_t> online;
  for (int64_t c = 0; c < setup_.num_clients; ++c)
    if (!fleet_ || fleet_->available(round, c, start_s)) online.push_back(c);
  available_ = static_cast<int64_t>(online.size());
  sampled_ = sample_from(std::move(online), want, opt_.seed, round);
  sent_.clear();
  sent_bytes_.clear();
  replies_.clear();
  reply_bytes_.clear();
  rejected_.clear();
  std::vector<Task> tasks;
  for (int64_t c : sampled_) {
    Message msg = server_->configure_fit(round, c);
    const uint64_t s = down_seed(opt_.seed, round, c);
    Task t{c, encode_message(msg, down_, s)};
    // The exact message, not the client's lossy copy of it: replies to a lossy down-link are
    // updates (ClientRunner::fit), added here to what the server really holds, so the down-link
    // error never enters the server's state (Caldas et al. 2018; TFF does the same).
    sent_[c] = std::move(msg);
    sent_bytes_[c] = t.bytes.size();
    tasks.push_back(std::move(t));
  }
  return tasks;
}

ServerLoop::CheckedReply ServerLoop::check_reply(int64_t client, const std::string& bytes) const {
  CheckedReply out;
  out.client = client;
  out.bytes = bytes.size();
  auto it = sent_.find(client);
  if (it == sent_.end()) {
    out.reason = "client " + std::to_string(client) + " was not asked this round";
    return out;
  }
  std::string& reason = out.reason;
  try {
    DecodeLimits limits;
    limits.max_decoded_bytes = opt_.max_decoded_bytes;
    limits.shapes = &it->second.tensors;
    const std::optional<NamedTensors> schema = server_->reply_schema(client, it->second);
    if (schema) {
      limits.shapes = &*schema;
      limits.exact = true;
      limits.exempt_config_key = kFitErrorKey;  // a failed fit: no tensors, rejected below
    }
    Message m =
        decode_message(bytes, up_seed(opt_.seed, round_, client), &it->second.tensors, limits);
    const auto n = m.metrics.find("num_samples");
    reason = bad_metric(m.metrics);
    if (auto f = m.config.find(kFitErrorKey); f != m.config.end())
      reason = "the client's fit failed: " + f->second.substr(0, 300);
    if (reason.empty() && !m.tensors.all_finite())
      reason = "non-finite values (NaN or Inf) in its update";
    // num_samples weights aggregation: a whole number, at most what the client holds.
    const auto cu = static_cast<size_t>(client);
    const double held = cu < setup_.client_train_sizes.size()
                            ? static_cast<double>(setup_.client_train_sizes[cu])
                            : 1e15;
    if (reason.empty() && (n == m.metrics.end() || n->second < 0 ||
                           n->second != std::floor(n->second) || n->second > held))
      reason = "num_samples must be a whole number in [0, " +
               std::to_string(static_cast<int64_t>(held)) + "] (the client's training samples)";
    if (reason.empty()) out.message = std::move(m);
  } catch (const Error& e) {
    reason = e.what();
  }
  return out;
}

std::string ServerLoop::add_reply(CheckedReply r) {
  const int64_t client = r.client;
  if (!sent_.count(client)) return "client " + std::to_string(client) + " was not asked this round";
  if (replies_.count(client) || rejected_.count(client))
    return "client " + std::to_string(client) + " already replied";
  reply_bytes_[client] = r.bytes;
  if (r.reason.empty() && r.message) {
    replies_[client] = Reply{client, std::move(*r.message)};
    return "";
  }
  if (r.reason.empty()) r.reason = "no message";
  rejected_[client] = r.reason;
  spdlog::warn("round {}: reply of client {} rejected: {}", round_, client, r.reason);
  return r.reason;
}

std::string ServerLoop::accept_reply(int64_t client, const std::string& bytes) {
  if (replies_.count(client)) return "client " + std::to_string(client) + " already replied";
  return add_reply(check_reply(client, bytes));
}

void ServerLoop::aggregate(std::vector<Reply>* ok) {
  if (!tolerant_) return server_->aggregate(round_, *ok);
  const Message before = server_->save_state();
  try {
    return server_->aggregate(round_, *ok);
  } catch (const Error& e) {
    spdlog::warn("round {}: aggregation failed ({}); trying each reply alone", round_, e.what());
  }
  std::vector<Reply> good;
  for (auto& r : *ok) {
    server_->load_state(before);
    try {
      server_->aggregate(round_, {r});
      good.push_back(std::move(r));
    } catch (const Error& e) {
      rejected_[r.client_id] = e.what();
      spdlog::warn("round {}: reply of client {} rejected: {}", round_, r.client_id, e.what());
    }
  }
  server_->load_state(before);
  *ok = std::move(good);
  server_->aggregate(round_, *ok);
}

Row ServerLoop::end_round() {
  Row row;
  row["round"] = static_cast<double>(round_);
  row["clients"] = static_cast<double>(sampled_.size());
  double down = 0, up = 0, macs = 0;
  for (const auto& [c, b] : sent_bytes_) down += static_cast<double>(b);
  for (const auto& [c, b] : reply_bytes_) up += static_cast<double>(b);
  RoundClose close;
  nlohmann::json log = nlohmann::json::array();
  if (fleet_) {  // the simulated clock decides who arrives in time (runtime/fleet.hpp)
    std::vector<ClientTime> times;
    std::vector<ClientTime> left;  // went offline (fleet.trace) before their reply would arrive
    const double start_s = sim_time_s_ + wait_s_;
    for (const auto& [c, r] : replies_) {
      const auto macs = r.message.metrics.find("client_macs");
      FEDPP_CHECK(macs != r.message.metrics.end(),
                  "a fleet times local training from the reply's client_macs, and algorithm '" +
                      opt_.algorithm + "' does not report it: run it without fleet.profile");
      const double down = static_cast<double>(sent_bytes_.at(c));
      const double up = static_cast<double>(reply_bytes_.at(c));
      const double seconds = fleet_->client_round_s(c, down, macs->second, up);
      const double until = fleet_->online_until(c, start_s);
      const bool gone = start_s + seconds > until;
      if (gone)
        left.push_back({c, until - start_s});
      else
        times.push_back({c, seconds});
      log.push_back({{"client", c}, {"class", fleet_->device_of(c).name}, {"bytes_down", down},
                     {"client_macs", macs->second}, {"bytes_up", up}, {"seconds", seconds}});
      if (gone) log.back()["left"] = true;
    }
    close = close_round(std::move(times), static_cast<int64_t>(sampled_.size()),
                        target_replies(), opt_.deadline_s, left);
    for (int64_t c : close.dropped) {  // cut off: its upload never counts, as in deployment
      replies_.erase(c);
      up -= static_cast<double>(reply_bytes_.at(c));
    }
    for (auto& entry : log) entry["kept"] = replies_.count(entry["client"].get<int64_t>()) > 0;
  }
  std::vector<Reply> ok;
  for (auto& [c, r] : replies_) ok.push_back(std::move(r));  // std::map: sorted by client id
  aggregate(&ok);
  for (const auto& [k, v] : server_->aggregate_metrics()) row[k] = v;
  if (fleet_) {
    const double server_s = fleet_->server_s(row.count("server_macs") ? row["server_macs"] : 0.0);
    sim_time_s_ += wait_s_ + close.round_s + server_s;
    row["available"] = static_cast<double>(available_);
    row["dropped"] = static_cast<double>(close.dropped.size());
    row["sim_round_s"] = wait_s_ + close.round_s + server_s;
    row["sim_time_s"] = sim_time_s_;
    if (writer_)
      writer_->append_line("fleet.jsonl", nlohmann::json{{"round", round_},
                                                         {"available", available_},
                                                         {"wait_s", wait_s_},
                                                         {"clients_s", close.round_s},
                                                         {"server_s", server_s},
                                                         {"clients", log}}
                                              .dump());
  }
  std::map<std::string, double> sum;
  std::map<std::string, int> count;
  for (const auto& r : ok) {
    for (const auto& [k, v] : r.message.metrics) {
      sum[k] += v;
      count[k] += 1;
    }
    macs += r.message.metric_or("client_macs", 0.0);
  }
  const double m = static_cast<double>(std::max<size_t>(1, sampled_.size()));
  row["replies"] = static_cast<double>(ok.size());
  row["rejected"] = static_cast<double>(rejected_.size());
  for (const auto& [k, v] : sum)
    if (k != "client_macs" && k != "num_samples") row["fit_" + k] = v / count[k];
  row["bytes_down"] = down;
  row["bytes_up"] = up;
  row["bytes_down_per_client"] = down / m;
  row["bytes_up_per_client"] = up / m;
  row["client_macs"] = macs;
  row["client_macs_per_client"] = macs / m;
  row["fit_s"] = seconds_since(t0_);
  return row;
}

bool ServerLoop::eval_due(int64_t round) const {
  return opt_.eval_every > 0 && (round % opt_.eval_every == 0 || round == opt_.rounds);
}

std::vector<Task> ServerLoop::begin_eval(int64_t round) {
  evals_.clear();
  eval_sent_bytes_.clear();
  std::vector<Task> tasks;
  if (!opt_.personalized) return tasks;
  for (int64_t c = 0; c < setup_.num_clients; ++c) {
    auto msg = server_->configure_evaluate(round, c);
    if (!msg) continue;
    Task t{c, encode_message(*msg, down_, eval_seed(opt_.seed, round, c))};
    eval_sent_bytes_[c] = t.bytes.size();
    tasks.push_back(std::move(t));
  }
  return tasks;
}

std::vector<Task> ServerLoop::export_tasks(int64_t round, const std::vector<int64_t>& clients) {
  std::vector<Task> tasks;
  for (int64_t c : clients) {
    auto msg = server_->configure_evaluate(round, c);
    tasks.push_back({c, msg ? encode_message(*msg, down_, eval_seed(opt_.seed, round, c)) : ""});
  }
  return tasks;
}

ServerLoop::CheckedEval ServerLoop::check_eval(int64_t client, const std::string& bytes) const {
  CheckedEval out;
  out.client = client;
  if (!eval_sent_bytes_.count(client)) {
    out.reason = "client " + std::to_string(client) + " was not asked";
    return out;
  }
  try {
    DecodeLimits limits;
    limits.max_decoded_bytes = opt_.max_decoded_bytes;
    Message m = decode_message(bytes, up_seed(opt_.seed, round_, client) ^ 1, nullptr, limits);
    if (!m.metrics.count("accuracy")) {
      out.reason = "evaluation reply has no accuracy";
    } else if (auto bad = bad_metric(m.metrics); !bad.empty()) {
      out.reason = "evaluation reply: " + bad;
    } else {
      out.row = Row(m.metrics.begin(), m.metrics.end());
      out.row["client"] = static_cast<double>(client);
    }
  } catch (const Error& e) {
    out.reason = e.what();
  }
  return out;
}

std::string ServerLoop::add_eval(CheckedEval e) {
  if (!eval_sent_bytes_.count(e.client)) return "client " + std::to_string(e.client) + " was not asked";
  if (e.reason.empty()) evals_[e.client] = std::move(e.row);
  return e.reason;
}

std::string ServerLoop::accept_eval(int64_t client, const std::string& bytes) {
  return add_eval(check_eval(client, bytes));
}

void ServerLoop::end_eval(Row* row) {
  auto te = std::chrono::steady_clock::now();
  if (test_.size() > 0)
    for (const auto& [k, v] : server_->evaluate(round_, test_)) (*row)[k] = v;
  if (!evals_.empty()) {
    for (const auto& [k, v] : server_->aggregate_evaluate(round_, evals_)) (*row)[k] = v;
    std::vector<Row> rows;
    for (const auto& [c, r] : evals_) rows.push_back(r);
    double eb = 0;
    for (const auto& [c, b] : eval_sent_bytes_) eb += static_cast<double>(b);
    (*row)["bytes_eval"] = eb;
    if (writer_) writer_->append_clients(round_, rows);
  }
  (*row)["eval_s"] = seconds_since(te);
}

Row ServerLoop::record(Row row) {
  row["wall_s"] = seconds_since(t0_);
  if (writer_) writer_->append_round(row);
  const bool last = round_ == opt_.rounds;
  const bool every = opt_.save_model_every > 0 && round_ % opt_.save_model_every == 0;
  if (writer_ && (last || every)) {
    if (auto model = server_->global_model()) {
      if (every)
        save_state_dict(model->tensors, writer_->dir() + "/global_model_round" +
                                            std::to_string(round_) + ".pt");
      if (last) save_state_dict(model->tensors, writer_->dir() + "/global_model.pt");
    }
  }
  if (opt_.quiet) return row;
  std::string acc;
  if (row.count("accuracy")) acc += fmt::format("  acc {:.4f}", row["accuracy"]);
  if (row.count("personal_accuracy_mean"))
    acc += fmt::format("  personal acc {:.4f}", row["personal_accuracy_mean"]);
  spdlog::info("round {:>4}/{}  clients {:>3}{}  train loss {:.4f}  down {:.2f} MB  up {:.2f} MB"
               "  {:.1f} s",
               row["round"], opt_.rounds, row["clients"], acc,
               row.count("fit_train_loss") ? row["fit_train_loss"] : 0.0,
               row["bytes_down"] / 1e6, row["bytes_up"] / 1e6, row["wall_s"]);
  return row;
}

ClientRunner::ClientRunner(const RunOptions& opt, std::unique_ptr<ClientAlgorithm> algo)
    : opt_(opt), up_(opt.up), algo_(std::move(algo)) {}

std::string ClientRunner::fit(int64_t round, int64_t client, const std::string& task_bytes,
                              const ClientData& data, ClientState* state) {
  Message in = decode_message(task_bytes, down_seed(opt_.seed, round, client));
  ClientContext ctx;
  ctx.client_id = client;
  ctx.round = round;
  ctx.data = &data;
  ctx.state = state;
  ctx.seed = fit_seed(opt_.seed, round, client);
  ctx.device = opt_.device;
  Message out = algo_->fit(in, ctx);
  // After a lossy down-link, `in` is only an approximation of what the server holds: send the
  // update (new - received) even over a lossless up-link, so the server rebuilds the reply on
  // its exact copy.
  const Delta delta = opt_.down.lossless() ? Delta::kWhenLossy : Delta::kAlways;
  return encode_message(out, up_, up_seed(opt_.seed, round, client), &in.tensors, delta);
}

std::string ClientRunner::fit_or_report(int64_t round, int64_t client,
                                        const std::string& task_bytes, const ClientData& data,
                                        ClientState* state, bool* failed) {
  ClientState work{state->tensors.clone(), state->scalars};  // deep: methods write in place
  try {
    std::string reply = fit(round, client, task_bytes, data, &work);
    *state = std::move(work);
    *failed = false;
    return reply;
  } catch (const Error& e) {
    *failed = true;
    Message m;
    m.config[kFitErrorKey] = std::string(e.what()).substr(0, 300);
    return encode_message(m, Pipeline(), up_seed(opt_.seed, round, client));
  }
}

std::string ClientRunner::save_personal_model(int64_t round, int64_t client,
                                              const std::string& task_bytes,
                                              const ClientState& state,
                                              const std::string& dir) const {
  const Message shared = task_bytes.empty()
                             ? Message{}
                             : decode_message(task_bytes, eval_seed(opt_.seed, round, client));
  auto model = algo_->personal_model(client, state, shared);
  if (!model) return "";
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  FEDPP_CHECK(!ec, "cannot create '" + dir + "' for output.save_client_models: " + ec.message());
  save_state_dict(model->tensors, dir + "/client_" + std::to_string(client) + ".pt");
  nlohmann::json entry = {{"model", model->model}};
  for (const auto& [k, v] : model->parts) entry[k] = v;
  return entry.dump();
}

std::string ClientRunner::evaluate(int64_t round, int64_t client, const std::string& task_bytes,
                                   const ClientData& data, ClientState* state) {
  Message in = decode_message(task_bytes, eval_seed(opt_.seed, round, client));
  ClientContext ctx;
  ctx.client_id = client;
  ctx.round = round;
  ctx.data = &data;
  ctx.state = state;
  ctx.seed = derive_seed(opt_.seed, Purpose::kMisc, {u(round), u(client)});
  ctx.device = opt_.device;
  Message out = algo_->evaluate(in, ctx);
  return encode_message(out, up_, up_seed(opt_.seed, round, client) ^ 1);
}

}  // namespace fedpp
