// Framework overhead: the wall time of FedAvg rounds in the simulation against a bare LibTorch
// loop doing the same SGD steps (same model, data, batch size, epochs and threads), without
// messages, codecs, state stores or evaluation. Reported as overhead = fedpp / bare - 1.
//
//   build/bench_overhead [model] [clients] [samples_per_client] [rounds] [--arm bare|fedpp]
// defaults: fedavg_cnn 10 300 3. Threads: 1 worker with 2 intra-op threads for both. With
// --arm, only that side runs (scripts/bench.py alternates the two in separate processes, so
// that neither inherits the other's warm caches or heap).
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "fedpp/core/config.hpp"
#include "fedpp/fl/training.hpp"
#include "fedpp/models/model.hpp"
#include "fedpp/runtime/simulation.hpp"
#include "fedpp/runtime/threads.hpp"

using namespace fedpp;
using Clock = std::chrono::steady_clock;

int main(int argc, char** argv) {
  fedpp::use_huge_pages(argv);  // may re-execute this program once (runtime/threads.hpp)
  std::vector<std::string> pos;
  std::string arm = "both";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--arm" && i + 1 < argc) {
      arm = argv[++i];
    } else if (a.rfind("--", 0) == 0) {
      std::fprintf(stderr, "usage: %s [model] [clients] [samples] [rounds] [--arm bare|fedpp]\n",
                   argv[0]);
      return 2;
    } else {
      pos.push_back(a);
    }
  }
  if (arm != "both" && arm != "bare" && arm != "fedpp") {
    std::fprintf(stderr, "bench_overhead: --arm must be bare or fedpp, not '%s'\n", arm.c_str());
    return 2;
  }
  std::string model = pos.size() > 0 ? pos[0] : "fedavg_cnn";
  int64_t clients = pos.size() > 1 ? std::stoll(pos[1]) : 10;
  int64_t per_client = pos.size() > 2 ? std::stoll(pos[2]) : 300;
  int64_t rounds = pos.size() > 3 ? std::stoll(pos[3]) : 3;
  const int64_t batch = 32;

  auto gen = at::detail::createCPUGenerator(7);
  auto data = std::make_shared<FederatedData>();
  for (int64_t c = 0; c < clients; ++c) {
    ClientData cd;
    cd.train.x = torch::randn({per_client, 1, 28, 28}, gen);
    cd.train.y = torch::randint(0, 10, {per_client}, gen, torch::kLong);
    cd.train.num_classes = 10;
    cd.test = cd.train;
    data->clients.push_back(cd);
    data->summary.push_back({c, per_client, per_client, {}});
  }
  data->global_test = data->clients[0].train;

  auto cfg = Config::from_string(
      "seed = 1\nrounds = " + std::to_string(rounds) + "\n[model]\nname = \"" + model +
      "\"\n[train]\nlr = 0.01\nmomentum = 0.9\nbatch_size = " + std::to_string(batch) +
      "\n[eval]\nevery = 0\n[runtime]\nworkers = 1\nthreads = 2\n[output]\nquiet = true\n");

  // Bare loop: the same SGD steps, straight LibTorch.
  set_worker_threads(2);
  auto net = make_model_seeded(model, ModelSpec{{1, 28, 28}, 10}, 1);
  TrainOptions opt;
  opt.lr = 0.01;
  opt.momentum = 0.9;
  opt.batch_size = batch;
  auto t0 = Clock::now();
  for (int64_t r = 0; r < (arm == "fedpp" ? 0 : rounds); ++r)
    for (int64_t c = 0; c < clients; ++c) {
      torch::optim::SGD sgd(net->parameters(), torch::optim::SGDOptions(0.01).momentum(0.9));
      const auto& d = data->clients[c].train;
      auto perm = torch::randperm(per_client, gen);
      for (int64_t s = 0; s < per_client; s += batch) {
        auto idx = perm.slice(0, s, std::min(per_client, s + batch));
        sgd.zero_grad();
        auto loss = torch::nn::functional::cross_entropy(net->forward(d.x.index_select(0, idx)),
                                                         d.y.index_select(0, idx));
        loss.backward();
        sgd.step();
      }
    }
  double bare = std::chrono::duration<double>(Clock::now() - t0).count();

  double fed = 0;
  if (arm != "bare") {
    Simulation sim(cfg, data);
    auto t1 = Clock::now();
    sim.run();
    fed = std::chrono::duration<double>(Clock::now() - t1).count();
  }

  std::printf("model %s, %lld clients x %lld samples, batch %lld, %lld rounds\n", model.c_str(),
              static_cast<long long>(clients), static_cast<long long>(per_client),
              static_cast<long long>(batch), static_cast<long long>(rounds));
  if (arm != "fedpp") std::printf("bare LibTorch loop : %8.3f s\n", bare);
  if (arm != "bare") std::printf("fedpp FedAvg rounds: %8.3f s\n", fed);
  if (arm == "both") std::printf("overhead           : %+7.2f %%\n", 100.0 * (fed / bare - 1.0));
  return 0;
}
