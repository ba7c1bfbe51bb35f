// FedAvgM (server momentum, Hsu et al. 2019) written outside fedpp: a ServerAlgorithm that
// reuses FedAvg's client and averaging, registered under a new name and run in the simulation
// on synthetic data. Prints the final accuracy.
#include <cstdio>

#include "fedpp/algorithms/fedavg.hpp"
#include "fedpp/runtime/simulation.hpp"

class FedAvgMServer : public fedpp::FedAvgServer {
 public:
  explicit FedAvgMServer(const fedpp::AlgorithmSetup& s)
      : FedAvgServer(s), beta_(s.cfg.get_double("fedavgm.beta", 0.9, 0.0, 0.999)) {}

  void aggregate(int64_t round, const std::vector<fedpp::Reply>& replies) override {
    if (replies.empty()) return;
    auto avg = fedpp::weighted_average(replies, global_);
    for (auto& [name, w] : global_) {
      if (!w.is_floating_point()) continue;
      auto delta = w - avg.at(name);  // pseudo-gradient
      if (!velocity_.contains(name)) velocity_.set(name, torch::zeros_like(w));
      auto& v = velocity_.at(name);
      v = beta_ * v + delta;
      w = w - v;
    }
  }

 private:
  double beta_;
  fedpp::NamedTensors velocity_;
};

int main() {
  fedpp::AlgorithmInfo info = fedpp::find_algorithm("fedavg");
  info.name = "fedavgm";
  info.description = "FedAvg with server momentum";
  info.make_server = [](const fedpp::AlgorithmSetup& s) {
    return std::make_unique<FedAvgMServer>(s);
  };
  fedpp::register_algorithm(info);

  auto cfg = fedpp::Config::from_string(R"(
seed = 1
rounds = 3
[algorithm]
name = "fedavgm"
[fedavgm]
beta = 0.5
[data]
dataset = "synthetic"
synthetic_samples = 800
synthetic_test_samples = 200
synthetic_classes = 4
synthetic_shape = [1, 8, 8]
num_clients = 4
[model]
name = "mlp"
[output]
quiet = true
)");
  fedpp::Simulation sim(cfg);
  auto rows = sim.run();
  std::printf("fedavgm accuracy after %zu rounds: %.4f\n", rows.size(), rows.back().at("accuracy"));
  return rows.back().at("accuracy") > 0.5 ? 0 : 1;
}
