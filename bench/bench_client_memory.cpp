// Memory of FedMoE's per-client private state: runs one round of 100 model-heterogeneous FedMoE
// clients (CNN-1..5 local experts, CNN-5 global expert, 128-wide gate) on small synthetic data
// in the simulation and prints the bytes the StateStore holds, per client model and in total,
// for 1x28x28 (Fashion-MNIST) and 3x32x32 (CIFAR-10) inputs, and the process's peak resident
// memory after each (getrusage). A plain main (no timing).
//   usage: bench_client_memory [num_clients] [both | mnist | cifar]   (one input shape per
//   process gives that shape's own peak)
#include <sys/resource.h>

#include <cstdio>
#include <cstdlib>
#include <map>

#include "fedpp/runtime/threads.hpp"
#include "fedpp/algorithms/fedmoe.hpp"
#include "fedpp/core/config.hpp"
#include "fedpp/runtime/simulation.hpp"

namespace {

double state_bytes(const fedpp::ClientState& s) {
  double b = 0;
  for (const auto& [name, t] : s.tensors) b += static_cast<double>(t.numel() * t.element_size());
  return b;
}

void measure(int64_t clients, const std::string& shape) {
  auto cfg = fedpp::Config::from_string(
      "seed = 1\nrounds = 1\n[algorithm]\nname = \"fedmoe\"\n"
      "[data]\ndataset = \"synthetic\"\nsynthetic_samples = " + std::to_string(clients * 8) +
      "\nsynthetic_test_samples = 100\nsynthetic_shape = " + shape +
      "\nnum_clients = " + std::to_string(clients) +
      "\npartition = \"iid\"\nmin_samples = 1\npool = \"all\"\n"
      "[train]\nbatch_size = 8\nlr = 0.0\n[eval]\nevery = 0\n"
      "[runtime]\nworkers = 2\n[output]\nquiet = true\n");
  fedpp::Simulation sim(cfg);
  sim.run();
  auto models = fedpp::client_models(cfg, clients);
  std::map<std::string, std::pair<int, double>> per_model;
  double total = 0;
  for (int64_t c = 0; c < clients; ++c) {
    double b = state_bytes(sim.states().load(c));
    per_model[models[c]].first += 1;
    per_model[models[c]].second = b;
    total += b;
  }
  std::printf("input %s, %lld heterogeneous FedMoE clients\n", shape.c_str(),
              static_cast<long long>(clients));
  for (const auto& [m, v] : per_model)
    std::printf("  %-5s x%3d  private state %8.2f MB per client (local model + gate)\n",
                m.c_str(), v.first, v.second / 1e6);
  std::printf("  total %.1f MB (mean %.2f MB per client); StateStore reports %.1f MB\n",
              total / 1e6, total / 1e6 / clients, sim.states().bytes() / 1e6);
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  std::printf("  peak RSS of the process so far %.1f MiB\n",
              static_cast<double>(u.ru_maxrss) / 1024);
}

}  // namespace

int main(int argc, char** argv) {
  fedpp::use_huge_pages(argv);  // may re-execute this program once (runtime/threads.hpp)
  const int64_t clients = argc > 1 ? std::atoll(argv[1]) : 100;
  const std::string which = argc > 2 ? argv[2] : "both";
  if (clients < 1 || (which != "both" && which != "mnist" && which != "cifar")) {
    std::fprintf(stderr, "usage: bench_client_memory [num_clients >= 1] [both | mnist | cifar]\n");
    return 2;
  }
  torch::set_num_threads(1);
  if (which != "cifar") measure(clients, "[1, 28, 28]");
  if (which != "mnist") measure(clients, "[3, 32, 32]");
  return 0;
}
