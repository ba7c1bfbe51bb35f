// Datasets in memory and the federated view of them.
//
// A Dataset holds a whole split as two tensors: x (float32 [N, C, H, W], already normalised per
// channel) and y (int64 [N], values in [0, num_classes)). A FederatedData is what a run trains
// on: one ClientData (train and test part) per client, the global test set for global-model
// methods, and a summary of the partition that is written beside the results.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

namespace fedpp {

class Config;

struct Dataset {
  torch::Tensor x;  // float32 [N, C, H, W]
  torch::Tensor y;  // int64 [N]
  int64_t num_classes = 0;
  std::string name;

  int64_t size() const { return y.defined() ? y.size(0) : 0; }
  std::vector<int64_t> sample_shape() const;  // {C, H, W}
  // Rows `idx` (copied, contiguous).
  Dataset subset(const std::vector<int64_t>& idx) const;
};

// Per-channel mean and standard deviation of pixel values scaled to [0, 1]: what a Dataset's x
// was normalised with.
struct ChannelStats {
  std::vector<double> mean, std;
};

// A train and a test split from one source, before any partitioning.
struct DataSplits {
  Dataset train;
  Dataset test;
  ChannelStats stats;  // the normalisation of both
};

struct ClientData {
  Dataset train;
  Dataset test;  // the client's own test split (its own label distribution)
};

struct ClientSummary {
  int64_t client = 0;
  int64_t train_samples = 0;
  int64_t test_samples = 0;
  std::vector<int64_t> train_per_class;  // count per class
};

struct FederatedData {
  // One entry per client (data.num_clients). Where this process does not hold a client's data
  // (clients_known = false: a server whose clients bring their own, or a deployed client, which
  // holds only its own), that entry is empty.
  std::vector<ClientData> clients;
  bool clients_known = true;
  Dataset global_test;  // the source's test split (global-model evaluation)
  ChannelStats stats;   // the normalisation of every split
  std::vector<ClientSummary> summary;  // of the clients whose data this process holds
  // The summary as JSON text (samples and classes per client), for the run folder.
  std::string summary_json() const;
};

}  // namespace fedpp
