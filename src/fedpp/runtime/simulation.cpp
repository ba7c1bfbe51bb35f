#include "fedpp/runtime/simulation.hpp"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <filesystem>

#include "fedpp/core/error.hpp"
#include "fedpp/core/files.hpp"
#include "fedpp/core/seed.hpp"
#include "fedpp/data/loaders.hpp"
#include "fedpp/data/partition.hpp"
#include "fedpp/runtime/fleet.hpp"
#include "fedpp/runtime/threads.hpp"

namespace fedpp {

std::shared_ptr<const FederatedData> load_federated_data(const Config& cfg) {
  uint64_t seed = static_cast<uint64_t>(cfg.get_int("seed", 1, 0));
  auto splits = load_splits(cfg, derive_seed(seed, Purpose::kPartition, {1}));
  return std::make_shared<FederatedData>(
      make_federated(std::move(splits), cfg, derive_seed(seed, Purpose::kPartition, {2})));
}

ModelSpec spec_of(const FederatedData& data) {
  FEDPP_CHECK(!data.clients.empty(), "the partition produced no clients");
  const Dataset& d = data.global_test.size() ? data.global_test : data.clients[0].train;
  return ModelSpec{d.sample_shape(), d.num_classes};
}

AlgorithmSetup setup_for(const Config& cfg, const RunOptions& opt, const FederatedData& data) {
  AlgorithmSetup setup;
  setup.cfg = cfg;
  setup.spec = spec_of(data);
  setup.num_clients = static_cast<int64_t>(data.clients.size());
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
  loop_->open_results(data_->summary_json());
}

Row Simulation::run_round(int64_t round) {
  auto tasks = loop_->begin_round(round);
  std::vector<std::string> replies = clients_->fit(round, tasks);
  // In simulation every reply comes from fedpp's own client code: a rejected one is a bug (or a
  // method breaking the reply rules) and stops the run instead of silently shrinking the round.
  for (size_t i = 0; i < tasks.size(); ++i)
    if (auto why = loop_->accept_reply(tasks[i].client, replies[i]); !why.empty())
      throw Error("round " + std::to_string(round) + ": the reply of client " +
                  std::to_string(tasks[i].client) + " was rejected: " + why);
  Row row = loop_->end_round();
  if (loop_->eval_due(round)) {
    auto evals = loop_->begin_eval(round);
    std::vector<std::string> answers = clients_->evaluate(round, evals);
    for (size_t i = 0; i < evals.size(); ++i)
      if (!answers[i].empty()) loop_->accept_eval(evals[i].client, answers[i]);
    loop_->end_eval(&row);
  }
  row = loop_->record(std::move(row));
  if (round == opt_.rounds && opt_.save_client_models) save_client_models();
  return row;
}

void Simulation::save_client_models() {
  const std::string dir = opt_.output_dir + "/client_models";
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);  // no file of an earlier run in this folder survives
  nlohmann::json index = nlohmann::json::array();
  std::vector<int64_t> all(data_->clients.size()), none;
  for (size_t c = 0; c < all.size(); ++c) all[c] = static_cast<int64_t>(c);
  const std::vector<std::string> models = clients_->save_models(all, dir);
  for (int64_t c : all) {
    const std::string& model = models[static_cast<size_t>(c)];
    if (model.empty())
      none.push_back(c);
    else
      index.push_back({{"client", c}, {"model", model},
                       {"file", "client_" + std::to_string(c) + ".pt"}});
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
  std::vector<Row> rows;
  for (int64_t r = 1; r <= opt_.rounds; ++r) rows.push_back(run_round(r));
  return rows;
}

}  // namespace fedpp
