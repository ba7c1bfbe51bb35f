#include "fedpp/runtime/client_pool.hpp"

#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <exception>
#include <filesystem>
#include <mutex>
#include <thread>

#include "fedpp/core/error.hpp"
#include "fedpp/runtime/threads.hpp"

namespace fedpp {

ClientPoolOptions ClientPoolOptions::from_config(const Config& cfg) {
  ClientPoolOptions o;
  o.workers = cfg.get_int("runtime.workers", o.workers, 1, 256);
  o.threads = cfg.get_int("runtime.threads", o.threads, 1, 256);
  return o;
}

ClientPool::ClientPool(const Config& cfg, const RunOptions& opt, const AlgorithmSetup& setup,
                       std::shared_ptr<const FederatedData> data, std::vector<int64_t> hosted)
    : data_(std::move(data)), hosted_(std::move(hosted)) {
  if (hosted_.empty())
    for (int64_t c = 0; c < setup.num_clients; ++c) hosted_.push_back(c);
  pool_ = ClientPoolOptions::from_config(cfg);
  progress_s_ = opt.quiet ? 0.0 : opt.progress_s;
  const auto state = cfg.get_choice("runtime.state", "memory", {"memory", "disk"});
  const auto state_dir = cfg.get_string("runtime.state_dir", "");
  const auto& info = find_algorithm(opt.algorithm);
  set_worker_threads(static_cast<int>(pool_.threads));
  for (int64_t w = 0; w < pool_.workers; ++w)
    runners_.push_back(std::make_unique<ClientRunner>(opt, info.make_client(setup)));
  if (state == "disk") {
    FEDPP_CHECK(!state_dir.empty() || !opt.output_dir.empty(),
                "runtime.state = \"disk\" needs runtime.state_dir or output.dir");
    states_ = make_disk_store(state_dir.empty() ? opt.output_dir + "/client_state" : state_dir,
                              Durability::kProcessCrash);  // scratch: a resume reads checkpoints
  } else {
    states_ = make_memory_store(setup.num_clients);
  }
  // The calling thread (aggregation, global evaluation) may use every core the workers use.
  set_worker_threads(static_cast<int>(pool_.workers * pool_.threads));
}

ClientPool::~ClientPool() = default;

template <typename Fn>
void ClientPool::parallel_for(size_t n, Fn&& fn) {
  std::atomic<size_t> next{0};
  std::exception_ptr error;
  std::mutex error_mu;
  auto work = [&](size_t w) {
    set_worker_threads(static_cast<int>(pool_.threads));
    for (size_t i = next++; i < n; i = next++) {
      try {
        fn(*runners_[w], i);
      } catch (...) {
        std::lock_guard<std::mutex> l(error_mu);
        if (!error) error = std::current_exception();
        next = n;
      }
    }
  };
  size_t n_workers = std::min(runners_.size(), n);
  if (n_workers <= 1) {
    work(0);
    set_worker_threads(static_cast<int>(pool_.workers * pool_.threads));
  } else {
    std::vector<std::thread> pool;
    for (size_t w = 0; w < n_workers; ++w) pool.emplace_back(work, w);
    for (auto& t : pool) t.join();
  }
  if (error) std::rethrow_exception(error);
}

std::vector<std::string> ClientPool::fit(int64_t round, std::vector<Task> tasks) {
  std::vector<std::string> replies(tasks.size());
  // Progress within a long round (output.progress_s): clients trained and the rate over their
  // training sets, at most once per progress_s, from the worker that finished a client.
  using Clock = std::chrono::steady_clock;
  const auto t0 = Clock::now();
  auto last = t0;
  size_t done = 0;
  int64_t samples = 0;
  std::mutex progress_mu;
  parallel_for(tasks.size(), [&](ClientRunner& runner, size_t i) {
    const int64_t c = tasks[i].client;
    ClientState state = states_->load(c);
    replies[i] = runner.fit(round, c, tasks[i].bytes, data_->clients[c], &state);
    std::string().swap(tasks[i].bytes);  // read: freed now, not at the end of the round
    states_->save(c, std::move(state));
    if (progress_s_ <= 0) return;
    std::lock_guard<std::mutex> l(progress_mu);
    ++done;
    samples += data_->clients[c].train.size();
    const auto now = Clock::now();
    const double since_start = std::chrono::duration<double>(now - t0).count();
    if (done < tasks.size() && since_start >= progress_s_ &&
        std::chrono::duration<double>(now - last).count() >= progress_s_) {
      last = now;
      spdlog::info("round {}: {}/{} clients trained in {:.0f} s ({:.0f} samples/s of their "
                   "training sets)",
                   round, done, tasks.size(), since_start,
                   static_cast<double>(samples) / since_start);
    }
  });
  return replies;
}

std::vector<std::string> ClientPool::evaluate(int64_t round, const std::vector<Task>& tasks) {
  std::vector<std::string> answers(tasks.size());
  parallel_for(tasks.size(), [&](ClientRunner& runner, size_t i) {
    const int64_t c = tasks[i].client;
    if (data_->clients[c].test.size() == 0) return;
    ClientState state = states_->load(c);
    answers[i] = runner.evaluate(round, c, tasks[i].bytes, data_->clients[c], &state);
  });
  return answers;
}

std::vector<std::string> ClientPool::save_models(int64_t round, const std::vector<Task>& tasks,
                                                 const std::string& dir) {
  std::vector<std::string> entries;
  for (const auto& t : tasks)
    entries.push_back(
        runners_[0]->save_personal_model(round, t.client, t.bytes, states_->load(t.client), dir));
  return entries;
}

void ClientPool::save_states(const std::string& dir) {
  auto out = make_disk_store(dir);
  for (int64_t c : hosted_)
    if (ClientState s = states_->load(c); !s.empty()) out->save(c, std::move(s));
}

void ClientPool::load_states(const std::string& dir) {
  FEDPP_CHECK(std::filesystem::is_directory(dir),
              "checkpoint folder of the client states '" + dir + "' is missing: was the run "
              "checkpointed on a folder every process can read? (delete the checkpoint to start "
              "over)");
  auto in = make_disk_store(dir);
  for (int64_t c : hosted_) states_->save(c, in->load(c));
}

}  // namespace fedpp
