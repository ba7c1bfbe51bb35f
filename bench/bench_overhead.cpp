// Framework overhead: the wall time of FedAvg rounds in the simulation against a bare LibTorch
// loop doing the same SGD steps (same model, data, batch size, epochs and threads), without
// messages, codecs, state stores or evaluation. Reported as overhead = fedpp / bare - 1.
//
//   build/bench_overhead [model] [clients] [samples_per_client] [rounds]
// defaults: fedavg_cnn 10 300 3. Threads: 1 worker with 2 intra-op threads for both.
#include <chrono>
#include <cstdio>
#include <string>

#include "fedpp/core/config.hpp"
#include "fedpp/fl/training.hpp"
#include "fedpp/models/model.hpp"
#include "fedpp/runtime/simulation.hpp"
#include "fedpp/runtime/threads.hpp"

using namespace fedpp;
using Clock = std::chrono::steady_clock;

int main(int argc, char** argv) {
  std::string model = argc > 1 ? argv[1] : "fedavg_cnn";
  int64_t clients = argc > 2 ? std::stoll(argv[2]) : 10;
  int64_t per_client = argc > 3 ? std::stoll(argv[3]) : 300;
  int64_t rounds = argc > 4 ? std::stoll(argv[4]) : 3;
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
  for (int64_t r = 0; r < rounds; ++r)
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

  Simulation sim(cfg, data);
  auto t1 = Clock::now();
  sim.run();
  double fed = std::chrono::duration<double>(Clock::now() - t1).count();

  std::printf("model %s, %lld clients x %lld samples, batch %lld, %lld rounds\n", model.c_str(),
              static_cast<long long>(clients), static_cast<long long>(per_client),
              static_cast<long long>(batch), static_cast<long long>(rounds));
  std::printf("bare LibTorch loop : %8.3f s\n", bare);
  std::printf("fedpp FedAvg rounds: %8.3f s\n", fed);
  std::printf("overhead           : %+7.2f %%\n", 100.0 * (fed / bare - 1.0));
  return 0;
}
