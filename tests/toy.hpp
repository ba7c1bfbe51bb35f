// Shared test fixtures: a small separable data set and the config that trains on it in well
// under a second. Header-only; every test file that includes it gets its own copy.
#pragma once
#include <torch/torch.h>

#include <memory>
#include <string>

#include "fedpp/core/config.hpp"
#include "fedpp/data/dataset.hpp"

namespace fedpp::toy {

// Four separable Gaussian clusters in 1x8x8, `per_client` samples for each client's train and
// test split and 256 for the global test set; the same numbers on every call.
inline std::shared_ptr<FederatedData> toy_data(int64_t clients, int64_t per_client = 64) {
  auto gen = at::detail::createCPUGenerator(123);
  auto centers = torch::randn({4, 1, 8, 8}, gen) * 2.0;
  auto make = [&](int64_t n) {
    Dataset d;
    d.y = torch::randint(0, 4, {n}, gen, torch::kLong);
    d.x = centers.index_select(0, d.y) + 0.5 * torch::randn({n, 1, 8, 8}, gen);
    d.num_classes = 4;
    d.name = "toy";
    return d;
  };
  auto data = std::make_shared<FederatedData>();
  for (int64_t c = 0; c < clients; ++c) {
    data->clients.push_back({make(per_client), make(per_client)});
    data->summary.push_back({c, per_client, per_client, {}});
  }
  data->global_test = make(256);
  return data;
}

// FedAvg with the MLP on toy_data: seed 3, 3 rounds, 2 workers, quiet; `extra` is appended.
inline Config toy_config(const std::string& extra = "") {
  return Config::from_string("seed = 3\nrounds = 3\n[model]\nname = \"mlp\"\n"
                             "[train]\nlr = 0.05\nbatch_size = 16\n"
                             "[runtime]\nworkers = 2\nthreads = 1\n[output]\nquiet = true\n" +
                             extra);
}

// A heterogeneous-method run on the synthetic loader: `algorithm` over 4 clients of 2 classes
// each (pathological, pooled, 20% of each client's data for its test split), 1,200 samples of 4
// classes, 3 rounds of 3 local epochs at SGD lr 0.05 momentum 0.9, batch 32, seed 1, 2 workers,
// quiet; `extra` (TOML) is appended. Trains in a few seconds and learns (chance: 0.5).
inline Config synthetic_pathological_config(const std::string& algorithm,
                                            const std::string& extra = "") {
  return Config::from_string(
      "seed = 1\nrounds = 3\n[algorithm]\nname = \"" + algorithm +
      "\"\n[data]\ndataset = \"synthetic\"\nsynthetic_samples = 1200\n"
      "synthetic_test_samples = 200\nsynthetic_classes = 4\nnum_clients = 4\n"
      "partition = \"pathological\"\nclasses_per_client = 2\npool = \"all\"\n"
      "client_test_fraction = 0.2\n[train]\nlocal_epochs = 3\nlr = 0.05\nmomentum = 0.9\n"
      "batch_size = 32\n[runtime]\nworkers = 2\n[output]\nquiet = true\n" + extra);
}

}  // namespace fedpp::toy
