// What lossy compression adds to a FedAvg round's wall time (methods/feddropout.md). Runs a few
// rounds of a config in simulation (default configs/fedavg_fmnist_compressed.toml: FedAvg CNN,
// Federated Dropout, Hadamard q8 down, Hadamard s0.5 q2 up) and, for the same rounds' messages,
// times every encode and decode the round performs, one after another on one thread:
//   per sampled client: server encodes its model, client decodes it, client encodes its update,
//   server decodes it.
// Prints per round: wall time, codec time (serial sum, an upper bound on what it adds: in the
// simulation the clients' encodes run on the worker threads), their ratio, and the bytes.
//   bench_compression_round [CONFIG] [--rounds N] [--set key=value ...]
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "fedpp/runtime/threads.hpp"
#include "fedpp/core/config.hpp"
#include "fedpp/core/error.hpp"
#include "fedpp/fl/wire.hpp"
#include "fedpp/runtime/simulation.hpp"

using namespace fedpp;

namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

struct CodecTime {
  double seconds = 0;
  double bytes_down = 0, bytes_up = 0;
};

// Every encode/decode of `round` for `clients`, with the server's current state, timed serially.
// The update is a small perturbation of what the client received (as after local training).
CodecTime time_codecs(ServerAlgorithm& server, const RunOptions& opt, int64_t round,
                      const std::vector<int64_t>& clients) {
  Pipeline down(opt.down), up(opt.up);
  CodecTime t;
  auto gen = at::detail::createCPUGenerator(static_cast<uint64_t>(round));
  for (int64_t c : clients) {
    Message msg = server.configure_fit(round, c);  // not timed: the algorithm's own work
    Message reply;
    for (const auto& [name, w] : msg.tensors)
      reply.tensors.set(name, w + 0.01 * torch::randn(w.sizes(), gen));
    reply.metrics["num_samples"] = 1;
    const double t0 = now_s();
    const std::string down_bytes = encode_message(msg, down, down_seed(opt.seed, round, c));
    Message in = decode_message(down_bytes, down_seed(opt.seed, round, c));
    const std::string up_bytes =
        encode_message(reply, up, up_seed(opt.seed, round, c), &in.tensors);
    Message back = decode_message(up_bytes, up_seed(opt.seed, round, c), &in.tensors);
    t.seconds += now_s() - t0;
    t.bytes_down += static_cast<double>(down_bytes.size());
    t.bytes_up += static_cast<double>(up_bytes.size());
  }
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  fedpp::use_huge_pages(argv);  // may re-execute this program once (runtime/threads.hpp)
  std::string path = "configs/fedavg_fmnist_compressed.toml";
  int64_t rounds = 3;
  std::vector<std::string> sets;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--rounds" && i + 1 < argc)
      rounds = std::stoll(argv[++i]);
    else if (a == "--set" && i + 1 < argc)
      sets.push_back(argv[++i]);
    else if (!a.empty() && a[0] != '-')
      path = a;
    else {
      std::fprintf(stderr, "usage: bench_compression_round [CONFIG] [--rounds N] [--set k=v]...\n");
      return 2;
    }
  }
  try {
    auto cfg = Config::from_file(path);
    for (const auto& s : sets) cfg.set(s);
    cfg.set("rounds=" + std::to_string(rounds));
    cfg.set("output.quiet=true");
    Simulation sim(cfg);
    std::printf("config %s: down %s, up %s, %zu clients\n", path.c_str(),
                sim.options().down.describe().c_str(), sim.options().up.describe().c_str(),
                sim.data().clients.size());
    std::printf("%5s %10s %10s %8s %12s %12s\n", "round", "wall_s", "codec_s", "codec%",
                "down_B/cl", "up_B/cl");
    double wall_sum = 0, codec_sum = 0;
    for (int64_t r = 1; r <= rounds; ++r) {
      Row row = sim.run_round(r);
      std::vector<int64_t> clients;
      for (int64_t c = 0; c < static_cast<int64_t>(row.at("clients")); ++c) clients.push_back(c);
      // Timed on the post-round state; the message sizes match the round's to within rounding.
      CodecTime ct = time_codecs(sim.server(), sim.options(), r + 1, clients);
      const double wall = row.at("wall_s");
      wall_sum += wall;
      codec_sum += ct.seconds;
      std::printf("%5lld %10.3f %10.3f %7.2f%% %12.0f %12.0f\n", static_cast<long long>(r), wall,
                  ct.seconds, 100.0 * ct.seconds / wall, ct.bytes_down / clients.size(),
                  ct.bytes_up / clients.size());
    }
    std::printf("total %10.3f %10.3f %7.2f%%\n", wall_sum, codec_sum, 100.0 * codec_sum / wall_sum);
    return 0;
  } catch (const Error& e) {
    std::fprintf(stderr, "bench_compression_round: error: %s\n", e.what());
    return 2;
  }
}
