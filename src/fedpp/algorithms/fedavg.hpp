// FedAvg (McMahan et al. 2017) and FedProx (Li et al. 2020).
//
// Server: holds the global model (config model.name); sends it to every sampled client; sets the
// new global model to the sample-weighted average of the returned models
// (w = sum_k n_k / n * w_k; integer buffers are taken from the first reply); evaluates it on
// the global test set.
// Client: loads the global model and runs train.local_epochs epochs of SGD (train.*). FedProx
// adds the proximal term mu/2 * ||w - w_global||^2 to each batch loss (fedprox.mu).
// The two halves live in algorithms/common/global_model.hpp, which Federated Dropout derives
// from; this file registers the two methods.
#pragma once
#include "fedpp/algorithms/common/global_model.hpp"  // FedAvgServer, FedAvgClient
#include "fedpp/fl/algorithm.hpp"

namespace fedpp {

AlgorithmInfo fedavg_info();
AlgorithmInfo fedprox_info();

}  // namespace fedpp
