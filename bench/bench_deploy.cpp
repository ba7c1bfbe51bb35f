// Deployment benchmarks (whole-run harness, not Google Benchmark):
//   1. round overhead: the same tiny-model run (mlp on 1x4x4 synthetic data) with N clients
//      (default 50) for R rounds (default 30), once in simulation and once through gRPC on
//      loopback (the server in this process, the N clients in a child process, each with its
//      own channel); reports the wall time per round of both and the difference, the cost of
//      the deployment runtime per round: the mean of rounds 2-6 (connections, HTTP/2 windows
//      and gRPC's thread pool still warming up) and the median of rounds 11-R (steady state);
//      and the CPU time per round of the simulation, of the server and of the clients;
//   2. transfer rate: one client, 3 rounds of a ~100 MB mlp model; reports the MB/s of the
//      task download and of the reply upload through gRPC (deploy.chunk_bytes, 1 MiB by
//      default; --chunk-kib), the first transfer and the median of the later ones (a
//      connection's first transfer runs while HTTP/2's flow-control window is still small; the
//      client reuses its receive buffer, so later downloads write into touched memory), against
//      a plain TCP copy of the same bytes over loopback into fresh and into touched memory;
//   3. (--idle-clients N, alone) N lightweight clients, each on its own connection, hold a long
//      poll open on a server that has no task for them (a child process issues the N polls
//      from one completion queue); reports the server process's peak thread count and peak
//      RSS while the N polls wait, against its count before they came, and how the polls ended.
// Usage: bench_deploy [--clients N] [--rounds R] [--mb M] [--chunk-kib K] [--skip-overhead]
//                     [--skip-transfer] | --idle-clients N [--wait-s S]
#include <arpa/inet.h>
#include <netinet/in.h>
#include <spdlog/spdlog.h>
#include <grpcpp/grpcpp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <thread>

#include "fedpp/runtime/threads.hpp"
#include "fedpp/core/config.hpp"
#include "fedpp/proto/fedpp.grpc.pb.h"
#include "fedpp/runtime/grpc_client.hpp"
#include "fedpp/runtime/grpc_server.hpp"
#include "fedpp/runtime/simulation.hpp"

using namespace fedpp;
using Clock = std::chrono::steady_clock;

namespace {

double secs_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

int64_t g_chunk_bytes = 1 << 20;  // deploy.chunk_bytes (--chunk-kib)

std::string config_text(int64_t clients, int64_t rounds, int64_t side, int64_t samples,
                        const std::string& out, double poll_s = 5) {
  return "seed = 1\nrounds = " + std::to_string(rounds) +
         "\n[model]\nname = \"mlp\"\n[data]\ndataset = \"synthetic\"\nsynthetic_samples = " +
         std::to_string(samples) + "\nsynthetic_test_samples = " + std::to_string(samples / 4 + 2) +
         "\nsynthetic_classes = 4\nsynthetic_shape = [1, " + std::to_string(side) + ", " +
         std::to_string(side) + "]\nnum_clients = " + std::to_string(clients) +
         "\nmin_samples = 1\n[train]\nbatch_size = 8\n[runtime]\nworkers = 1\nthreads = 1\n"
         "[output]\nquiet = true\ndir = \"" +
         out + "\"\n[deploy]\ntoken_secret = \"bench\"\npoll_s = " + std::to_string(poll_s) +
         "\nlisten = \"127.0.0.1:0\"\nchunk_bytes = " + std::to_string(g_chunk_bytes) + "\n";
}

// The mean wall time of rounds from..to (1-based, clipped to the rows there are).
double mean_wall(const std::vector<Row>& rows, size_t from, size_t to) {
  double s = 0;
  size_t n = 0;
  for (size_t i = from - 1; i < std::min(to, rows.size()); ++i, ++n) s += rows[i].at("wall_s");
  return s / static_cast<double>(std::max<size_t>(1, n));
}
// The median wall time of the rounds from `from` on (1-based); 0 when there are none.
double median_wall(const std::vector<Row>& rows, size_t from) {
  std::vector<double> w;
  for (size_t i = from - 1; i < rows.size(); ++i) w.push_back(rows[i].at("wall_s"));
  if (w.empty()) return 0;
  std::sort(w.begin(), w.end());
  return w[w.size() / 2];
}

// The config's first n clients, joining the server on 127.0.0.1:port, each with its own
// channel, each run on a thread of its own; returns their stats once all are done.
std::vector<ClientStats> run_clients(const std::string& text, int port, int64_t n) {
  auto data = load_federated_data(Config::from_string(text));
  std::vector<std::unique_ptr<FederationClient>> cs;
  for (int64_t c = 0; c < n; ++c) {
    JoinOptions jo;
    jo.server = "127.0.0.1:" + std::to_string(port);
    jo.client_id = c;
    jo.token = derive_token("bench", c);
    jo.state_dir = (std::filesystem::temp_directory_path() / "fedpp_bench_state").string();
    cs.push_back(std::make_unique<FederationClient>(Config::from_string(text), jo, data));
  }
  std::vector<ClientStats> stats(cs.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < cs.size(); ++i)
    threads.emplace_back([&, i] { stats[i] = cs[i]->run(); });
  for (auto& t : threads) t.join();
  return stats;
}

// Runs the config through gRPC on loopback: server and clients in this process.
std::pair<std::vector<Row>, std::vector<ClientStats>> deploy(const std::string& text,
                                                             int64_t clients) {
  FederationServer server(Config::from_string(text), ServeOptions{});
  std::vector<ClientStats> stats;
  std::thread all([&] { stats = run_clients(text, server.port(), clients); });
  auto rows = server.run();
  all.join();
  return {rows, stats};
}

// The clients of a round-overhead run in a child process, so that the server's CPU time and
// the clients' can be told apart (both still share the machine's cores). Forked before this
// process starts any thread; the child waits for the server's port, runs the clients, reports
// how many of their tasks came inside a poll's answer, and exits.
struct ClientProcess {
  pid_t pid = -1;
  int port_w = -1, counts_r = -1;
};
ClientProcess fork_clients(const std::string& text, int64_t clients) {
  int to_child[2], to_parent[2];
  if (pipe(to_child) != 0 || pipe(to_parent) != 0) throw std::runtime_error("pipe failed");
  std::fflush(stdout);  // or the child would print it again
  const pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid > 0) {
    close(to_child[0]);
    close(to_parent[1]);
    return {pid, to_child[1], to_parent[0]};
  }
  close(to_child[1]);
  close(to_parent[0]);
  int rc = 2;
  try {
    int port = 0;
    if (read(to_child[0], &port, sizeof port) == sizeof port) {
      const auto stats = run_clients(text, port, clients);
      int64_t counts[2] = {0, 0};  // tasks inside a poll's answer, tasks
      for (const auto& st : stats) {
        counts[0] += st.inline_tasks;
        counts[1] += st.fits + st.evals;
      }
      if (write(to_parent[1], counts, sizeof counts) == sizeof counts) rc = 0;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "client process: %s\n", e.what());
  }
  std::fflush(stdout);
  _exit(rc);
}

// Bytes per second of a plain TCP copy of `bytes` over loopback (1 MiB writes), into a
// destination whose pages are touched before the clock starts (`touched`) or first touched by
// the copy itself, as a receiver that allocates for each message does.
double tcp_rate(size_t bytes, bool touched) {
  int ls = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  bind(ls, reinterpret_cast<sockaddr*>(&a), sizeof a);
  getsockname(ls, reinterpret_cast<sockaddr*>(&a), &len);
  listen(ls, 1);
  std::string src(bytes, 'x');
  for (size_t i = 0; i < bytes; ++i) src[i] = static_cast<char>(i * 2654435761u >> 24);
  std::thread sender([&] {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
    size_t off = 0;
    while (off < bytes) {
      ssize_t n = write(s, src.data() + off, std::min<size_t>(1 << 20, bytes - off));
      if (n <= 0) break;
      off += static_cast<size_t>(n);
    }
    close(s);
  });
  int r = accept(ls, nullptr, nullptr);
  std::unique_ptr<char[]> dst(new char[bytes]);  // not touched: no page is mapped yet
  if (touched) std::memset(dst.get(), 0, bytes);
  const auto t0 = Clock::now();
  size_t got = 0;
  while (got < bytes) {
    ssize_t n = read(r, dst.get() + got, bytes - got);
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  const double s = secs_since(t0);
  sender.join();
  close(r);
  close(ls);
  return static_cast<double>(got) / s;
}

// CPU seconds (user + system) this process has used so far, all threads.
double cpu_s() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  auto sec = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  return sec(u.ru_utime) + sec(u.ru_stime);
}

// A field of /proc/self/status ("Threads", "VmHWM" in kB), or -1.
int64_t proc_status(const std::string& key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(key + ":", 0) == 0) return std::atoll(line.c_str() + key.size() + 1);
  return -1;
}

// The client side of --idle-clients: n polls, one connection each, from one completion queue
// (no thread per call). Prints how they ended; returns the process exit code.
int idle_clients(int port, int64_t n, double wait_s) {
  grpc::CompletionQueue cq;
  struct Call {
    std::shared_ptr<grpc::Channel> channel;
    std::unique_ptr<wire::Federation::Stub> stub;
    grpc::ClientContext ctx;
    wire::TaskHeader rep;
    grpc::Status status;
    std::unique_ptr<grpc::ClientAsyncResponseReader<wire::TaskHeader>> rpc;
  };
  std::vector<std::unique_ptr<Call>> calls;
  const auto t0 = Clock::now();
  for (int64_t c = 0; c < n; ++c) {
    auto call = std::make_unique<Call>();
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // a connection of its own
    call->channel = grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(port),
                                              grpc::InsecureChannelCredentials(), args);
    call->stub = wire::Federation::NewStub(call->channel);
    call->ctx.AddMetadata(kClientIdHeader, std::to_string(c));
    call->ctx.AddMetadata(kTokenHeader, derive_token("bench", c));
    call->ctx.set_wait_for_ready(true);
    call->ctx.set_deadline(std::chrono::system_clock::now() +
                           std::chrono::milliseconds(static_cast<int64_t>(1000 * wait_s) + 60000));
    wire::PollRequest req;
    req.set_wait_s(wait_s);
    call->rpc = call->stub->AsyncPoll(&call->ctx, req, &cq);
    call->rpc->Finish(&call->rep, &call->status, call.get());
    calls.push_back(std::move(call));
  }
  const double issued = secs_since(t0);
  int64_t waited = 0, other = 0;
  double first = 1e9, last = 0;
  for (int64_t i = 0; i < n; ++i) {
    void* tag = nullptr;
    bool ok = false;
    if (!cq.Next(&tag, &ok)) break;
    auto* call = static_cast<Call*>(tag);
    const double t = secs_since(t0);
    first = std::min(first, t), last = std::max(last, t);
    if (ok && call->status.ok() && call->rep.kind() == wire::TaskHeader::WAIT) ++waited;
    else ++other;
  }
  std::printf("  %lld polls issued in %.2f s; %lld answered WAIT after their %.0f s wait "
              "(between %.2f and %.2f s after the first was issued), %lld otherwise\n",
              static_cast<long long>(n), issued,
              static_cast<long long>(waited), wait_s, first, last,
              static_cast<long long>(other));
  return waited == n ? 0 : 1;
}

// --idle-clients: the server in this process, the n clients in a child (forked before any
// gRPC or torch thread exists, so that the child is a clean process).
int bench_idle(int64_t n, double wait_s) {
  // One socket per client on each side: raise the open-file limit to its hard limit.
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
  }
  int to_child[2];
  if (pipe(to_child) != 0) return 2;
  const pid_t child = fork();
  if (child < 0) {
    std::perror("fork");
    return 2;
  }
  if (child == 0) {
    close(to_child[1]);
    int port = 0, rc = 2;
    try {
      if (read(to_child[0], &port, sizeof port) == sizeof port) rc = idle_clients(port, n, wait_s);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "client process: %s\n", e.what());
    }
    std::fflush(stdout);
    _exit(rc);
  }
  close(to_child[0]);
  const auto tmp = std::filesystem::temp_directory_path() / "fedpp_bench_idle";
  const auto text = config_text(n, 1, 4, 2 * n, tmp.string(), wait_s);
  int64_t before = 0, peak = 0;
  {
    FederationServer server(Config::from_string(text), ServeOptions{});
    before = proc_status("Threads");
    peak = before;
    const int port = server.port();
    if (write(to_child[1], &port, sizeof port) != sizeof port) return 2;
    int status = 0;
    while (waitpid(child, &status, WNOHANG) == 0) {  // the polls wait: sample this process
      peak = std::max(peak, proc_status("Threads"));
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    std::printf("idle long polls, %lld clients (one connection each), deploy.poll_s = %.0f:\n"
                "  server process: %lld threads before the clients came, peak %lld while their "
                "polls waited; peak RSS %.0f MiB\n",
                static_cast<long long>(n), wait_s, static_cast<long long>(before),
                static_cast<long long>(peak), proc_status("VmHWM") / 1024.0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      std::fprintf(stderr, "the client process failed (status %d)\n", status);
      return 1;
    }
  }
  std::filesystem::remove_all(tmp);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  fedpp::use_huge_pages(argv);  // may re-execute this program once (runtime/threads.hpp)
  int64_t clients = 50, rounds = 30;
  double mb = 100;
  bool overhead = true, transfer = true;
  int64_t idle = 0;
  double wait_s = 10;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--clients" && i + 1 < argc) clients = std::atoll(argv[++i]);
    else if (a == "--rounds" && i + 1 < argc) rounds = std::atoll(argv[++i]);
    else if (a == "--mb" && i + 1 < argc) mb = std::atof(argv[++i]);
    else if (a == "--chunk-kib" && i + 1 < argc) g_chunk_bytes = std::atoll(argv[++i]) * 1024;
    else if (a == "--skip-overhead") overhead = false;
    else if (a == "--skip-transfer") transfer = false;
    else if (a == "--idle-clients" && i + 1 < argc) idle = std::atoll(argv[++i]);
    else if (a == "--wait-s" && i + 1 < argc) wait_s = std::atof(argv[++i]);
    else {
      std::fprintf(stderr,
                   "usage: %s [--clients N] [--rounds R] [--mb M] [--chunk-kib K] "
                   "[--skip-overhead] [--skip-transfer] | --idle-clients N [--wait-s S]\n",
                   argv[0]);
      return 2;
    }
  }
  spdlog::set_level(spdlog::level::warn);
  if (idle > 0) return bench_idle(idle, wait_s);
  const auto tmp = std::filesystem::temp_directory_path() / "fedpp_bench_deploy";

  if (overhead) {
    const auto text = config_text(clients, rounds, 4, clients * 16, (tmp / "overhead").string());
    auto sim_cfg = Config::from_string(text);
    sim_cfg.mark_used("deploy");
    const ClientProcess child = fork_clients(text, clients);  // before any thread starts
    const auto w0 = Clock::now();
    const double c0 = cpu_s();
    auto sim_rows = Simulation(sim_cfg).run();
    const double c1 = cpu_s(), w1 = secs_since(w0);
    const auto w2 = Clock::now();
    std::vector<Row> rows;
    int64_t counts[2] = {0, 0};  // from the clients' process: tasks inlined, tasks
    {
      FederationServer server(Config::from_string(text), ServeOptions{});
      const int port = server.port();
      if (write(child.port_w, &port, sizeof port) != sizeof port)
        throw std::runtime_error("cannot reach the client process");
      // The clients' process writes its counts once its clients are done. Should it die
      // first, the server would wait for their replies for ever: end with an error instead.
      std::thread watch([&] {
        if (read(child.counts_r, counts, sizeof counts) != sizeof counts) {
          std::fprintf(stderr, "the client process ended before its clients were done\n");
          std::fflush(stdout);
          _exit(1);
        }
      });
      rows = server.run();
      watch.join();
    }
    close(child.port_w);
    close(child.counts_r);
    int status = 0;
    waitpid(child.pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      std::fprintf(stderr, "the client process failed (status %d)\n", status);
      return 1;
    }
    const double c2 = cpu_s(), w3 = secs_since(w2);
    rusage kids{};
    getrusage(RUSAGE_CHILDREN, &kids);
    const double client_cpu = static_cast<double>(kids.ru_utime.tv_sec + kids.ru_stime.tv_sec) +
                              (kids.ru_utime.tv_usec + kids.ru_stime.tv_usec) / 1e6;
    const int64_t inlined = counts[0], tasks = counts[1];
    std::printf("round overhead, %lld clients, mlp 1x4x4 (%.0f KB per message), %lld rounds, "
                "%lld of %lld tasks inside the poll's answer:\n",
                static_cast<long long>(clients), rows.back().at("bytes_down_per_client") / 1e3,
                static_cast<long long>(rounds), static_cast<long long>(inlined),
                static_cast<long long>(tasks));
    auto line = [&](const char* what, double s, double d) {
      std::printf("  %s: simulation %.3f s/round, gRPC deployment %.3f s/round, overhead %.3f "
                  "s/round (%.1f ms per client)\n",
                  what, s, d, d - s, 1e3 * (d - s) / static_cast<double>(clients));
    };
    line("rounds 2-6, mean", mean_wall(sim_rows, 2, 6), mean_wall(rows, 2, 6));
    if (rounds >= 11)
      line(("rounds 11-" + std::to_string(rounds) + ", median").c_str(), median_wall(sim_rows, 11),
           median_wall(rows, 11));
    // Whole runs (set-up, every round, shut-down): where the CPU time went.
    const double r = static_cast<double>(rounds);
    std::printf("  CPU time per round, whole runs: simulation %.3f s; gRPC deployment: server "
                "process %.3f s, client process %.3f s (%.2f cores busy)\n",
                (c1 - c0) / r, (c2 - c1) / r, client_cpu / r, (c2 - c1 + client_cpu) / w3);
  }
  if (transfer) {
    // mlp: in*200 + 200 + 200*200 + 200 + 200*4 + 4 floats; pick the input side for `mb` MB.
    const double in = (mb * 1e6 / 4 - 41004) / 200;
    const auto side = static_cast<int64_t>(std::ceil(std::sqrt(in)));
    const auto text = config_text(1, 3, side, 4, (tmp / "transfer").string());
    auto [rows, stats] = deploy(text, 1);
    const auto& st = stats.at(0);
    // The model's transfers (fit and evaluation tasks down, fit replies up; not the small
    // evaluation replies): the first, and the median of the rest.
    struct Rates {
      double first, later;
      size_t n_later;
    };
    auto rates = [](const std::vector<ClientStats::Transfer>& all) {
      int64_t big = 0;
      for (const auto& t : all) big = std::max(big, t.bytes);
      std::vector<double> r;
      for (const auto& t : all)
        if (t.bytes * 2 >= big) r.push_back(static_cast<double>(t.bytes) / t.s / 1e6);
      const double first = r.empty() ? 0 : r.front();
      if (r.size() > 1) r.erase(r.begin());
      std::sort(r.begin(), r.end());
      return Rates{first, r.empty() ? 0 : r[r.size() / 2], r.size()};
    };
    const Rates down = rates(st.fetches), up = rates(st.sends);
    if (st.fetches.empty()) {
      std::fprintf(stderr, "the model came inside the poll's answer (it fits one chunk): give "
                           "a larger --mb or a smaller --chunk-kib\n");
      return 2;
    }
    const auto model = static_cast<size_t>(st.fetches.at(0).bytes);
    const double fresh = tcp_rate(model, false), touched = tcp_rate(model, true);
    std::printf("transfer of a %.1f MB model over loopback, %lld KiB chunks, 3 rounds:\n"
                "  gRPC download (FetchTask) first %.0f MB/s, later %.0f MB/s (median of %zu)\n"
                "  gRPC upload (SendReply, incl. server decode) first %.0f MB/s, later %.0f MB/s\n"
                "  plain TCP copy into fresh memory %.0f MB/s, into touched memory %.0f MB/s\n",
                static_cast<double>(model) / 1e6, static_cast<long long>(g_chunk_bytes / 1024),
                down.first, down.later, down.n_later, up.first, up.later, fresh / 1e6,
                touched / 1e6);
  }
  std::filesystem::remove_all(tmp);
  return 0;
}
