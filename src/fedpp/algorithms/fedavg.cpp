#include "fedpp/algorithms/fedavg.hpp"

namespace fedpp {

AlgorithmInfo fedavg_info() {
  return {"fedavg", "FedAvg: sample-weighted averaging of locally trained models", false,
          [](const AlgorithmSetup& s) { return std::make_unique<FedAvgServer>(s); },
          [](const AlgorithmSetup& s) { return std::make_unique<FedAvgClient>(s, 0.0); }};
}

AlgorithmInfo fedprox_info() {
  return {"fedprox", "FedProx: FedAvg with the proximal term mu/2 ||w - w_global||^2", false,
          [](const AlgorithmSetup& s) { return std::make_unique<FedAvgServer>(s); },
          [](const AlgorithmSetup& s) {
            double mu = s.cfg.get_double("fedprox.mu", 0.01, 0.0, 1e3);
            return std::make_unique<FedAvgClient>(s, mu);
          }};
}

}  // namespace fedpp
