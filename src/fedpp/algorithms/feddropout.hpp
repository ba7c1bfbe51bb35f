// Federated Dropout (Caldas et al. 2018; docs/methods/feddropout.md), on top of FedAvg.
//
// Server: per round and client (or, with feddropout.shared = true, once per round for all
// clients) draws a seeded selection keeping a fraction (1 - feddropout.rate) of every hidden
// unit group of the global model (conv filters and hidden FC units; inputs and classes are always
// kept), sends the dense sub-model cut out of the global weights with its widths in
// Message::config["feddropout.widths"], remembers the selection per (round, client), and maps the
// returned sub-models back: each global entry becomes the num_samples-weighted average over the
// clients that held it; an entry no client held keeps its value.
// Client: builds the sub-model architecture with Model::with_widths (cached per widths) and
// trains it exactly as a FedAvg client; client_macs are the sub-model's.
// Rate 0 is FedAvg: the same messages, bytes and numbers.
// Config: feddropout.rate in [0, 1) (default 0.25), feddropout.shared (default false); the model
// (model.name) must have unit groups (the ConvNet zoo: fedavg_cnn, cnn1..cnn5, mlp).
#pragma once
#include <map>
#include <utility>

#include "fedpp/algorithms/common/global_model.hpp"
#include "fedpp/algorithms/submodel.hpp"

namespace fedpp {

// Message::config key carrying the sub-model's widths ("32,48,384").
inline constexpr const char* kDropoutWidthsKey = "feddropout.widths";

class FedDropoutServer : public FedAvgServer {
 public:
  explicit FedDropoutServer(const AlgorithmSetup& setup);
  Message configure_fit(int64_t round, int64_t client_id) override;
  void aggregate(int64_t round, const std::vector<Reply>& replies) override;

  double rate() const { return rate_; }
  // The selection sent to `client_id` in `round` (throws fedpp::Error when none was).
  const UnitSelection& selection(int64_t round, int64_t client_id) const;

 private:
  double rate_;
  bool shared_;
  std::vector<UnitGroup> groups_;
  std::map<std::pair<int64_t, int64_t>, UnitSelection> selections_;  // (round, client)
};

class FedDropoutClient : public FedAvgClient {
 public:
  explicit FedDropoutClient(const AlgorithmSetup& setup);
  // Trains the sub-model the message describes (or the full model when it names no widths).
  Message fit(const Message& in, ClientContext& ctx) override;
  Message evaluate(const Message& in, ClientContext& ctx) override;

 private:
  void use_model_for(const Message& in);  // points model_ at the architecture `in` describes
  ModelPtr full_;
  std::map<std::vector<int64_t>, ModelPtr> submodels_;  // by widths
};

AlgorithmInfo feddropout_info();

}  // namespace fedpp
