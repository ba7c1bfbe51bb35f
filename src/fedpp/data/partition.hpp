// Partitioners: split sample indices among clients by label.
//
// - iid: a seeded random permutation cut into near-equal parts.
// - dirichlet(alpha): for each class, client shares drawn from Dir(alpha); each client then
//   gets at least min_samples (re-drawn until it does, a bounded number of times, then an error
//   naming alpha and min_samples).
// - pathological (k classes per client): client i holds k classes (assigned round-robin so every
//   class is held by a near-equal number of clients); each class is split over its holders in
//   proportions drawn from U(0.4, 0.6) and renormalised (docs/methods/fedmoe.md).
// Every index appears in exactly one client's list. All choices are seeded.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "fedpp/data/dataset.hpp"

namespace fedpp {

class Config;

struct PartitionSpec {
  std::string kind = "iid";  // iid | dirichlet | pathological
  int64_t num_clients = 10;
  double alpha = 0.5;
  int64_t classes_per_client = 2;
  int64_t min_samples = 10;
  uint64_t seed = 0;
};

// labels: int64 [N]. Returns one sorted index list per client.
std::vector<std::vector<int64_t>> partition_indices(const torch::Tensor& labels,
                                                    int64_t num_classes,
                                                    const PartitionSpec& spec);

// Splits one client's indices into train and test so that the test part follows the client's
// own label distribution (per-class split with fraction test_fraction, seeded).
void split_train_test(const std::vector<int64_t>& idx, const torch::Tensor& labels,
                      double test_fraction, uint64_t seed, std::vector<int64_t>* train,
                      std::vector<int64_t>* test);

// The whole federated view from config keys data.* (see README "Config reference"):
// data.partition, data.num_clients, data.alpha, data.classes_per_client, data.min_samples,
// data.client_test_fraction, data.pool ("train" partitions the train split and gives clients
// a test part drawn from the test split with their own labels; "all" pools train and test and
// splits inside each client).
// `splits` is taken by value: pass it with std::move and its pooled copy is freed as soon as the
// clients' parts are cut, instead of living beside them until the caller drops it.
FederatedData make_federated(DataSplits splits, const Config& cfg, uint64_t seed);

}  // namespace fedpp
