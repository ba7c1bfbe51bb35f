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

}  // namespace fedpp::toy
