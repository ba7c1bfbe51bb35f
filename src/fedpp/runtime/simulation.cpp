#include "fedpp/runtime/simulation.hpp"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <filesystem>

#include "fedpp/core/error.hpp"
#include "fedpp/core/files.hpp"
#include "fedpp/core/seed.hpp"
#include "fedpp/data/loaders.hpp"
#include "fedpp/data/partition.hpp"
#include "fedpp/runtime/checkpoint.hpp"
#include "fedpp/runtime/fleet.hpp"
#include "fedpp/runtime/run_identity.hpp"
#include "fedpp/runtime/threads.hpp"

namespace fedpp {

std::shared_ptr<const FederatedData> load_federated_data(const Config& cfg, int64_t only,
                                                         const std::string& dir) {
  uint64_t seed = static_cast<uint64_t>(cfg.get_int("seed", 1, 0));
  if (cfg.has("data.client_dirs"))  // the global test subset is seeded as load_splits seeds it
    return std::make_shared<FederatedData>(
        load_client_folders(cfg, derive_seed(seed, Purpose::kPartition, {1}), only, dir));
  FEDPP_CHECK(dir.empty(), "a client data folder ('" + dir + "', fedpp join --data) needs "
                           "data.client_dirs in the config: the server and every client must "
                           "know that the clients bring their own data");
  auto splits = load_splits(cfg, derive_seed(seed, Purpose::kPartition, {1}));
  return std::make_shared<FederatedData>(
      make_federated(std::move(splits), cfg, derive_seed(seed, Purpose::kPartition, {2})));
}

ModelSpec spec_of(const FederatedData& data) {
  FEDPP_CHECK(!data.clients.empty(), "the partition produced no clients");
  if (data.global_test.size()) return {data.global_test.sample_shape(), data.global_test.num_classes};
  for (const auto& c : data.clients)  // a deployed client holds only its own data
    if (c.train.size()) return {c.train.sample_shape(), c.train.num_classes};
  throw Error("no data to take the input shape from: neither a global test set nor a client's "
              "training data");
}

AlgorithmSetup setup_for(const Config& cfg, const RunOptions& opt, const FederatedData& data) {
  AlgorithmSetup setup;
  setup.cfg = cfg;
  setup.spec = spec_of(data);
  setup.num_clients = static_cast<int64_t>(data.clients.size());
  if (data.clients_known)  // else unknown here: the clients hold their own data
    for (const auto& c : data.clients) setup.client_train_sizes.push_back(c.train.size());
  setup.seed = opt.seed;
  setup.device = opt.device;
  return setup;
}

Simulation::Simulation(Config cfg) : cfg_(std::move(cfg)) {
  data_ = load_federated_data(cfg_);
  build(nullptr);
}

Simulation::Simulation(Config cfg, std::shared_ptr<const FederatedData> data)
    : cfg_(std::move(cfg)), data_(std::move(data)) {
  cfg_.mark_used("data");  // the data came from the caller
  build(nullptr);
}

Simulation::Simulation(Config cfg, std::shared_ptr<const FederatedData> data,
                       ClientHostFactory make_host)
    : cfg_(std::move(cfg)), data_(std::move(data)) {
  cfg_.mark_used("data");
  build(make_host);
}

Simulation::~Simulation() = default;

StateStore& Simulation::states() {
  FEDPP_CHECK(pool_ != nullptr, "the clients' private state lives on the processes that run "
                                "them (MPI ranks 1..K-1), not in this one");
  return pool_->states();
}

void Simulation::build(const ClientHostFactory& make_host) {
  opt_ = RunOptions::from_config(cfg_);
  opt_.max_decoded_bytes = 0;  // in-process replies: no cap (deploy.max_decoded_bytes is for serve)
  FEDPP_CHECK(!opt_.save_client_models || !opt_.output_dir.empty(),
              "output.save_client_models needs output.dir (or --out): where to write the models");
  const auto& info = find_algorithm(opt_.algorithm);
  AlgorithmSetup setup = setup_for(cfg_, opt_, *data_);
  loop_ = std::make_unique<ServerLoop>(cfg_, opt_, info, setup, data_->global_test);
  auto fleet = Fleet::from_config(cfg_, setup.num_clients, opt_.seed);
  FEDPP_CHECK(fleet || (opt_.over_select == 1.0 && opt_.deadline_s == 0.0),
              "sampling.over_select and sampling.deadline_s act on a simulated clock in "
              "simulation: set fleet.profile (runtime/fleet.hpp, docs/fleet.md)");
  loop_->set_fleet(std::move(fleet));
  if (make_host) {
    clients_ = make_host(cfg_, opt_, setup, data_);
  } else {
    auto pool = std::make_unique<ClientPool>(cfg_, opt_, setup, data_);
    pool_ = pool.get();
    clients_ = std::move(pool);
  }
  cfg_.mark_used("deploy");  // one file drives both: the simulation ignores deploy.*
  cfg_.check_all_used();
  FEDPP_CHECK(opt_.checkpoint_every == 0 || !opt_.output_dir.empty(),
              "output.checkpoint_every needs output.dir (or --out): checkpoints go to "
              "<output.dir>/checkpoint");
  fingerprint_ = run_identity(cfg_, /*with_fleet=*/true);
}

void Simulation::open_results(int64_t resumed_after) {
  if (results_open_) return;
  results_open_ = true;
  if (resumed_after == 0 && !opt_.output_dir.empty() &&
      std::filesystem::exists(checkpoint_dir())) {
    spdlog::info("{}: removing the checkpoint of an earlier run in this folder (this run "
                 "replaces it; `fedpp run --resume` would have continued it)",
                 checkpoint_dir());
    std::error_code ec;
    std::filesystem::remove_all(checkpoint_dir(), ec);
  }
  loop_->open_results(data_->summary_json(), resumed_after);
}

void Simulation::resume() {
  FEDPP_CHECK(!results_open_, "Simulation::resume() must come before the first round");
  FEDPP_CHECK(!opt_.output_dir.empty(),
              "--resume needs output.dir (or --out): the results folder of the run to continue, "
              "which holds its checkpoint");
  const std::string dir = checkpoint_dir();
  auto ck = read_checkpoint(dir);
  FEDPP_CHECK(ck, "--resume: no checkpoint in '" + dir + "': a run writes one every "
                  "output.checkpoint_every rounds (0, the default, writes none); start without "
                  "--resume");
  const auto diff = identity_differences(fingerprint_, ck->fingerprint);
  std::string keys;
  for (const auto& d : diff) keys += (keys.empty() ? "" : "; ") + d;
  FEDPP_CHECK(diff.empty(), "--resume: this config differs from the run checkpointed in '" + dir +
                                "' (" + keys + "); resume with the run's config, or start "
                                "without --resume");
  FEDPP_CHECK(ck->round >= 1 && ck->round < opt_.rounds &&
                  static_cast<int64_t>(ck->rows.size()) == ck->round,
              "--resume: the checkpoint in '" + dir + "' is of round " +
                  std::to_string(ck->round) + " with " + std::to_string(ck->rows.size()) +
                  " result rows, not a round before the last (" + std::to_string(opt_.rounds) +
                  "): delete it to start over");
  server().load_state(ck->state);
  if (!ck->clients.empty()) clients_->load_states(dir + "/" + ck->clients);
  open_results(ck->round);
  loop_->restore_results(ck->rows);
  rows_ = std::move(ck->rows);
  next_round_ = ck->round + 1;
  spdlog::info("resuming after round {} of {} from {}", ck->round, opt_.rounds, dir);
}

void Simulation::checkpoint(int64_t round) {
  Checkpoint c;
  c.round = round;
  c.run_id = "simulation";
  c.fingerprint = fingerprint_;
  c.state = server().save_state();
  c.rows = rows_;
  c.clients = "clients_" + std::to_string(round);
  const std::string clients_dir = checkpoint_dir() + "/" + c.clients;
  std::error_code ec;
  std::filesystem::remove_all(clients_dir, ec);  // no file of an earlier attempt survives
  clients_->save_states(clients_dir);
  write_checkpoint(checkpoint_dir(), c);
}

Row Simulation::run_round(int64_t round) {
  open_results(0);
  auto tasks = loop_->begin_round(round);
  std::vector<int64_t> asked;
  for (const auto& t : tasks) asked.push_back(t.client);
  // The host frees each encoded task once its client has read it; each encoded reply is freed
  // once decoded, so the round's peak holds one set of messages, not three.
  std::vector<std::string> replies = clients_->fit(round, std::move(tasks));
  // In simulation every reply comes from fedpp's own client code: a rejected one is a bug (or a
  // method breaking the reply rules) and stops the run instead of silently shrinking the round.
  for (size_t i = 0; i < asked.size(); ++i) {
    if (auto why = loop_->accept_reply(asked[i], replies[i]); !why.empty())
      throw Error("round " + std::to_string(round) + ": the reply of client " +
                  std::to_string(asked[i]) + " was rejected: " + why);
    std::string().swap(replies[i]);
  }
  Row row = loop_->end_round();
  if (loop_->eval_due(round)) {
    auto evals = loop_->begin_eval(round);
    std::vector<std::string> answers = clients_->evaluate(round, evals);
    for (size_t i = 0; i < evals.size(); ++i)
      if (!answers[i].empty()) loop_->accept_eval(evals[i].client, answers[i]);
    loop_->end_eval(&row);
  }
  row = loop_->record(std::move(row));
  rows_.push_back(row);
  next_round_ = round + 1;
  if (opt_.checkpoint_every > 0 && round % opt_.checkpoint_every == 0 && round < opt_.rounds)
    checkpoint(round);
  if (round == opt_.rounds && opt_.save_client_models) save_client_models();
  return row;
}

void Simulation::save_client_models() {
  const std::string dir = opt_.output_dir + "/client_models";
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);  // no file of an earlier run in this folder survives
  nlohmann::json index = nlohmann::json::array();
  std::vector<int64_t> none;
  // Every client's model is built with what evaluation would send it now (FedMoE: the global
  // expert), in batches so that the encoded messages of many clients are never all in memory.
  const auto n = static_cast<int64_t>(data_->clients.size());
  constexpr int64_t kBatch = 64;
  for (int64_t from = 0; from < n; from += kBatch) {
    std::vector<int64_t> ids;
    for (int64_t c = from; c < std::min(n, from + kBatch); ++c) ids.push_back(c);
    const std::vector<Task> batch = loop_->export_tasks(opt_.rounds, ids);
    const std::vector<std::string> entries = clients_->save_models(opt_.rounds, batch, dir);
    for (size_t i = 0; i < batch.size(); ++i) {
      const int64_t c = batch[i].client;
      if (entries[i].empty()) {
        none.push_back(c);
        continue;
      }
      auto entry = nlohmann::json::parse(entries[i]);
      entry["client"] = c;
      entry["file"] = "client_" + std::to_string(c) + ".pt";
      index.push_back(std::move(entry));
    }
  }
  if (!index.empty() && !none.empty())
    spdlog::warn("output.save_client_models: {} client(s) never trained and have no model of "
                 "their own (first: client {})",
                 none.size(), none.front());
  if (index.empty()) {
    spdlog::warn("output.save_client_models: algorithm '{}' keeps no personalised models{}",
                 opt_.algorithm, server().global_model() ? " (its model is global_model.pt)" : "");
    return;
  }
  write_file_atomic(dir + "/index.json", index.dump(1) + "\n",
                    "set output.dir to a writable place with free space");
}

std::vector<Row> Simulation::run() {
  for (int64_t r = next_round_; r <= opt_.rounds; ++r) run_round(r);
  return rows_;
}

}  // namespace fedpp
