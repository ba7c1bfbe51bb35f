// runtime/mpi.hpp over the MPI C API. Only the main thread of a rank calls MPI
// (MPI_THREAD_FUNNELED); a rank's ClientPool workers never do.
//
// Protocol, rank 0 -> each client rank r, per phase (tag kCommand, then kData):
//   header int64[3] {kind, round, n}
//   kFit / kEval: n x (int64 client, bytes task)          -> reply: status, n x bytes
//   kSave:        bytes dir, n x (int64 client, bytes task) -> reply: status, n x bytes entry
//   kSaveStates / kLoadStates: bytes dir (n = 0)          -> reply: status (the rank's clients'
//                 private states written to / read from dir: a checkpoint, runtime/checkpoint.hpp)
//   kStop:        nothing                                 -> no reply; the rank leaves its loop
// Rank 0 takes the answers in the order the ranks finish. Every receive waits by probing and
// sleeping (await_message), not in MPI's busy-polling receive.
// status int64: 0 = ok; 1 = failed, followed by one bytes message instead of the n answers.
// bytes: int64 length, then chunks of at most kChunk bytes.
#include "fedpp/runtime/mpi.hpp"

#include <mpi.h>
#include <sched.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <thread>

#include "fedpp/core/error.hpp"
#include "fedpp/runtime/client_pool.hpp"
#include "fedpp/runtime/simulation.hpp"
#include "fedpp/runtime/threads.hpp"

namespace fedpp {
namespace {

constexpr int kCommand = 1;
constexpr int kData = 2;
constexpr int64_t kChunk = int64_t{1} << 30;  // bytes per MPI_Send: far under INT_MAX
enum Kind : int64_t { kFit = 1, kEval = 2, kSave = 3, kStop = 4, kSaveStates = 5, kLoadStates = 6 };

bool sends_dir(int64_t kind) {
  return kind == kSave || kind == kSaveStates || kind == kLoadStates;
}

void check_mpi(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, msg, &len);
  throw Error(std::string("MPI ") + what + " failed: " + std::string(msg, len));
}

// Waits until a message from `src` (MPI_ANY_SOURCE: anyone) with `tag` is there, sleeping
// between probes (50 us doubling to 2 ms): MPI's blocking receive busy-polls, which would take a
// core from the training workers of this machine's other ranks. Returns the sender.
int await_message(int src, int tag) {
  auto pause = std::chrono::microseconds(50);
  for (;;) {
    int flag = 0;
    MPI_Status st;
    check_mpi(MPI_Iprobe(src, tag, MPI_COMM_WORLD, &flag, &st), "probe");
    if (flag) return st.MPI_SOURCE;
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::microseconds(2000));
  }
}

void send_ints(const int64_t* v, int n, int dest, int tag) {
  check_mpi(MPI_Send(v, n, MPI_INT64_T, dest, tag, MPI_COMM_WORLD), "send");
}
void recv_ints(int64_t* v, int n, int src, int tag) {
  await_message(src, tag);
  check_mpi(MPI_Recv(v, n, MPI_INT64_T, src, tag, MPI_COMM_WORLD, MPI_STATUS_IGNORE), "receive");
}
void send_int(int64_t v, int dest) { send_ints(&v, 1, dest, kData); }
int64_t recv_int(int src) {
  int64_t v = 0;
  recv_ints(&v, 1, src, kData);
  return v;
}

void send_bytes(const std::string& b, int dest) {
  send_int(static_cast<int64_t>(b.size()), dest);
  for (int64_t off = 0; off < static_cast<int64_t>(b.size()); off += kChunk) {
    const int64_t n = std::min<int64_t>(kChunk, static_cast<int64_t>(b.size()) - off);
    check_mpi(MPI_Send(b.data() + off, static_cast<int>(n), MPI_BYTE, dest, kData, MPI_COMM_WORLD),
              "send");
  }
}

std::string recv_bytes(int src) {
  const int64_t size = recv_int(src);
  FEDPP_CHECK(size >= 0, "MPI: rank " + std::to_string(src) + " sent a negative length");
  std::string b(static_cast<size_t>(size), '\0');
  for (int64_t off = 0; off < size; off += kChunk) {
    const int64_t n = std::min<int64_t>(kChunk, size - off);
    await_message(src, kData);
    check_mpi(MPI_Recv(b.data() + off, static_cast<int>(n), MPI_BYTE, src, kData, MPI_COMM_WORLD,
                       MPI_STATUS_IGNORE),
              "receive");
  }
  return b;
}

// Rank 0's view of the clients: each phase's tasks go to their owner ranks, answers come back
// in task order. A rank's failure is rethrown naming the rank, after every rank answered.
class MpiClientHost final : public ClientHost {
 public:
  explicit MpiClientHost(int world) : world_(world) {}

  std::vector<std::string> fit(int64_t round, std::vector<Task> tasks) override {
    return exchange(kFit, round, tasks, "", &tasks);  // owned: each task freed once sent
  }
  std::vector<std::string> evaluate(int64_t round, const std::vector<Task>& tasks) override {
    return exchange(kEval, round, tasks);
  }
  std::vector<std::string> save_models(int64_t round, const std::vector<Task>& tasks,
                                       const std::string& dir) override {
    return exchange(kSave, round, tasks, dir);
  }
  void save_states(const std::string& dir) override { exchange(kSaveStates, 0, {}, dir); }
  void load_states(const std::string& dir) override { exchange(kLoadStates, 0, {}, dir); }

  void stop_all() {
    for (int r = 1; r < world_; ++r) {
      const int64_t header[3] = {kStop, 0, 0};
      send_ints(header, 3, r, kCommand);
    }
  }

 private:
  // Sends each rank its tasks, then gathers the answers. `release`, when given, is `tasks`
  // itself, owned by the caller's by-value copy: each task's bytes are freed once sent
  // (MPI_Send has returned), so that rank 0 does not hold every encoded task while the answers
  // arrive (its peak is the larger of the two, not their sum).
  std::vector<std::string> exchange(Kind kind, int64_t round, const std::vector<Task>& tasks,
                                    const std::string& dir = "",
                                    std::vector<Task>* release = nullptr) {
    std::map<int, std::vector<size_t>> by_rank;
    for (int r = 1; r < world_; ++r) by_rank[r];
    for (size_t i = 0; i < tasks.size(); ++i)
      by_rank[mpi_owner_rank(tasks[i].client, world_)].push_back(i);
    for (const auto& [r, idx] : by_rank) {
      const int64_t header[3] = {kind, round, static_cast<int64_t>(idx.size())};
      send_ints(header, 3, r, kCommand);
      if (sends_dir(kind)) send_bytes(dir, r);
      for (size_t i : idx) {
        send_int(tasks[i].client, r);
        send_bytes(tasks[i].bytes, r);
        if (release) std::string().swap((*release)[i].bytes);
      }
    }
    // Answers in the order the ranks finish, so that no finished rank waits (spinning in its
    // send) for a slower one; a rank's own messages arrive in order (MPI's per-sender order).
    std::vector<std::string> answers(tasks.size());
    std::map<int, std::string> failures;
    for (size_t left = by_rank.size(); left > 0; --left) {
      const int r = await_message(MPI_ANY_SOURCE, kData);
      FEDPP_CHECK(by_rank.count(r), "MPI: rank " + std::to_string(r) + " answered out of turn");
      if (recv_int(r) != 0) {
        failures[r] = recv_bytes(r);
        continue;
      }
      for (size_t i : by_rank.at(r)) answers[i] = recv_bytes(r);
    }
    if (!failures.empty())  // the lowest failing rank, whatever the timing
      throw Error("MPI rank " + std::to_string(failures.begin()->first) + ": " +
                  failures.begin()->second);
    return answers;
  }

  int world_;
};

// mpirun binds each process to one core when it starts two or fewer (Open MPI's default), which
// would run a rank's worker threads one at a time.
void warn_if_bound_too_tightly(int64_t threads_wanted) {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) return;
  const int cores = CPU_COUNT(&set);
  if (cores < threads_wanted) {
    int rank = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    spdlog::warn("MPI rank {} may run on {} core(s) but runtime.workers x runtime.threads = {}: "
                 "start mpirun with --bind-to none (or --map-by slot:PE={})",
                 rank, cores, threads_wanted, threads_wanted);
  }
}

// A client rank: builds its ClientPool (or keeps the reason it could not) and serves rank 0's
// phases until kStop.
void serve_clients(Config cfg, int rank, int world) {
  std::unique_ptr<ClientPool> pool;
  std::string broken;
  try {
    auto data = load_federated_data(cfg);
    RunOptions opt = RunOptions::from_config(cfg);
    AlgorithmSetup setup = setup_for(cfg, opt, *data);
    std::vector<int64_t> mine;
    for (int64_t c = 0; c < setup.num_clients; ++c)
      if (mpi_owner_rank(c, world) == rank) mine.push_back(c);
    pool = std::make_unique<ClientPool>(cfg, opt, setup, data, std::move(mine));
    warn_if_bound_too_tightly(pool->options().workers * pool->options().threads);
  } catch (const std::exception& e) {
    broken = e.what();
  }
  for (;;) {
    int64_t header[3];
    recv_ints(header, 3, 0, kCommand);
    const auto kind = static_cast<Kind>(header[0]);
    if (kind == kStop) return;
    const int64_t round = header[1], n = header[2];
    std::string dir;
    if (sends_dir(kind)) dir = recv_bytes(0);
    std::vector<Task> tasks(static_cast<size_t>(n));
    for (auto& t : tasks) {
      t.client = recv_int(0);
      t.bytes = recv_bytes(0);
    }
    std::vector<std::string> answers;
    std::string why = broken;
    if (why.empty()) {
      try {
        if (kind == kSaveStates)
          pool->save_states(dir);
        else if (kind == kLoadStates)
          pool->load_states(dir);
        else
          answers = kind == kFit    ? pool->fit(round, std::move(tasks))
                    : kind == kEval ? pool->evaluate(round, tasks)
                                    : pool->save_models(round, tasks, dir);
      } catch (const std::exception& e) {
        why = e.what();
      }
    }
    send_int(why.empty() ? 0 : 1, 0);
    if (!why.empty()) {
      send_bytes(why, 0);
      continue;
    }
    for (const auto& a : answers) send_bytes(a, 0);
  }
}

struct MpiSession {
  MpiSession() {
    int provided = 0;
    check_mpi(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided), "init");
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
  }
  ~MpiSession() { MPI_Finalize(); }
  int rank = 0, size = 1;
};

}  // namespace

std::vector<Row> run_mpi(Config cfg, bool resume, bool quiet_clients) {
  MpiSession mpi;
  if (mpi.rank != 0) {
    if (quiet_clients) spdlog::set_level(spdlog::level::warn);
    serve_clients(std::move(cfg), mpi.rank, mpi.size);
    return {};
  }
  MpiClientHost* host = nullptr;
  try {
    FEDPP_CHECK(mpi.size >= 2, "MPI: a run needs at least 2 ranks (rank 0 the server, ranks "
                               "1..K-1 the clients): mpirun -np 2 or more");
    Simulation sim(cfg, load_federated_data(cfg),
                   [&](Config& c, const RunOptions& opt, const AlgorithmSetup& setup,
                       std::shared_ptr<const FederatedData>) {
                     // The client keys (train.*, the method's) are read on the client ranks;
                     // one client built here validates them against this config too.
                     find_algorithm(opt.algorithm).make_client(setup);
                     // runtime.* sizes the client ranks' pools; here only the server thread's
                     // intra-op threads, as in one process.
                     const int64_t workers = c.get_int("runtime.workers", 2, 1, 256);
                     const int64_t threads = c.get_int("runtime.threads", 1, 1, 256);
                     c.get_choice("runtime.state", "memory", {"memory", "disk"});
                     c.get_string("runtime.state_dir", "");
                     set_worker_threads(static_cast<int>(workers * threads));
                     auto h = std::make_unique<MpiClientHost>(mpi.size);
                     host = h.get();
                     return h;
                   });
    spdlog::info("fedpp run: {}, {} clients, {} rounds over MPI: {} ranks (server on rank 0, "
                 "{} client ranks), results in {}",
                 sim.options().algorithm, sim.data().clients.size(), sim.options().rounds,
                 mpi.size, mpi.size - 1,
                 sim.options().output_dir.empty() ? "(none)" : sim.options().output_dir);
    if (resume) sim.resume();
    auto rows = sim.run();
    host->stop_all();
    return rows;
  } catch (...) {
    // Every client rank waits for a command: tell them to stop, then report on rank 0.
    MpiClientHost(mpi.size).stop_all();
    throw;
  }
}

}  // namespace fedpp
