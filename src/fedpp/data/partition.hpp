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

// ---- Clients with their own data (data.client_dirs) ---------------------------------------
// data.client_dirs is a path template with {k} for the client id 0..data.num_clients-1; client
// k's folder holds its own train and test split (layout: loaders.hpp, load_folder_splits). The
// partition keys (data.partition, data.alpha, ...) do not apply and are ignored.

// Client k's folder: the template with {k} replaced. Throws fedpp::Error when the key is unset or
// has no {k}.
std::string client_dir(const Config& cfg, int64_t client);

constexpr int64_t kAllClients = -1;  // load_client_folders: every client's folder (simulation)
constexpr int64_t kNoClients = -2;   // none: a server, which needs only the global test set

// The federated view from the clients' folders. only = kAllClients: every client's folder and
// the global test set (the test split of data.root, see load_global_test). only = kNoClients: the
// global test set only. only = k: client k's folder only (from `dir` when not empty: fedpp join
// --data), no global test set. Entries not loaded stay empty and clients_known is false. Throws
// fedpp::Error for a missing folder or file, or a folder whose classes or image shape differ
// from the global test set's.
FederatedData load_client_folders(const Config& cfg, uint64_t seed, int64_t only,
                                  const std::string& dir = "");

}  // namespace fedpp
