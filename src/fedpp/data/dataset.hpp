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

// A train and a test split from one source, before any partitioning.
struct DataSplits {
  Dataset train;
  Dataset test;
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
  std::vector<ClientData> clients;
  Dataset global_test;  // the source's test split (global-model evaluation)
  std::vector<ClientSummary> summary;
  // The summary as JSON text (samples and classes per client), for the run folder.
  std::string summary_json() const;
};

}  // namespace fedpp
