// Datasets in memory and the federated view of them.
//
// A Dataset holds a whole split as two tensors: x, the inputs, and y (int64 [N], values in
// [0, num_classes)). Image data sets read from bytes keep x as uint8 pixels [N, C, H, W] with the
// per-channel normalisation beside it, and inputs() normalises one batch at a time: a quarter of
// the memory of float32, and the same floats bit for bit as normalising the whole split once.
// Other inputs (features a method computed, data sets a test builds) are float32, already
// normalised. Every loader (synthetic data too) gives uint8 pixels. A FederatedData is what a
// run trains on: one ClientData (train and test part) per client, the global test set for
// global-model methods, and a summary of the partition that is written beside the results.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

namespace fedpp {

class Config;

struct Dataset {
  torch::Tensor x;  // float32 [N, C, H, W] (normalised), or uint8 [N, C, H, W] pixels
  torch::Tensor y;  // int64 [N]
  // With uint8 x: float32 [1, C, 1, 1]; an input is (x / 255 - mean) / sd. Undefined otherwise.
  torch::Tensor mean, sd;
  int64_t num_classes = 0;
  std::string name;

  int64_t size() const { return y.defined() ? y.size(0) : 0; }
  std::vector<int64_t> sample_shape() const;  // {C, H, W}
  // Rows `idx` (copied, contiguous), in x's own type.
  Dataset subset(const std::vector<int64_t>& idx) const;
  // The model inputs, float32 [*, C, H, W], normalised: rows [start, end), rows `idx` (int64),
  // or every row. A new tensor when x is uint8; a view (slice) or gather of x otherwise.
  torch::Tensor inputs(int64_t start, int64_t end) const;
  torch::Tensor inputs(const torch::Tensor& idx) const;
  torch::Tensor inputs() const;

 private:
  // Normalises uint8 pixels shaped like x with this data set's mean and sd (a new tensor).
  torch::Tensor normalised(const torch::Tensor& pixels) const;
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
