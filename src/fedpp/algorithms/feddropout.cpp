#include "fedpp/algorithms/feddropout.hpp"

#include <limits>

#include "fedpp/core/error.hpp"
#include "fedpp/core/seed.hpp"

namespace fedpp {

FedDropoutServer::FedDropoutServer(const AlgorithmSetup& setup)
    : FedAvgServer(setup),
      rate_(setup.cfg.get_double("feddropout.rate", 0.25, 0.0, 0.999)),
      shared_(setup.cfg.get_bool("feddropout.shared", false)),
      groups_(model_->unit_groups()) {
  FEDPP_CHECK(rate_ == 0.0 || !groups_.empty(),
              "feddropout.rate = " + std::to_string(rate_) + " but model '" +
                  model_->model_name() +
                  "' has no droppable units: use a ConvNet model (model.name = fedavg_cnn, "
                  "cnn1..cnn5 or mlp) or set feddropout.rate = 0");
}

Message FedDropoutServer::configure_fit(int64_t round, int64_t client_id) {
  if (rate_ == 0.0) return FedAvgServer::configure_fit(round, client_id);
  // Selections of earlier rounds are no longer needed.
  selections_.erase(selections_.begin(),
                    selections_.lower_bound({round, std::numeric_limits<int64_t>::min()}));
  const auto r = static_cast<uint64_t>(round);
  const uint64_t seed =
      shared_ ? derive_seed(setup_.seed, Purpose::kDropout, {r})
              : derive_seed(setup_.seed, Purpose::kDropout, {r, static_cast<uint64_t>(client_id)});
  auto& sel = selections_[{round, client_id}] = random_selection(groups_, rate_, seed);
  Message m;
  m.tensors = extract_submodel(global_, groups_, sel);
  m.config[kDropoutWidthsKey] = widths_to_string(sel.widths());
  return m;
}

const UnitSelection& FedDropoutServer::selection(int64_t round, int64_t client_id) const {
  auto it = selections_.find({round, client_id});
  FEDPP_CHECK(it != selections_.end(), "Federated Dropout: client " + std::to_string(client_id) +
                                           " was sent no sub-model in round " +
                                           std::to_string(round));
  return it->second;
}

void FedDropoutServer::aggregate(int64_t round, const std::vector<Reply>& replies) {
  if (rate_ == 0.0) return FedAvgServer::aggregate(round, replies);
  if (replies.empty()) return;
  SubmodelAverager avg(global_, groups_);
  for (const auto& r : replies)
    avg.add(r.message.tensors, selection(round, r.client_id), r.message.metric("num_samples"));
  global_ = avg.result();
}

FedDropoutClient::FedDropoutClient(const AlgorithmSetup& setup)
    : FedAvgClient(setup, 0.0), full_(model_) {}

void FedDropoutClient::use_model_for(const Message& in) {
  auto it = in.config.find(kDropoutWidthsKey);
  if (it == in.config.end()) {
    model_ = full_;
    return;
  }
  auto widths = widths_from_string(it->second, std::string("message config ") + kDropoutWidthsKey);
  auto& sub = submodels_[widths];
  if (!sub) {
    // with_widths initialises from the global torch RNG: hold its lock (the weights are loaded
    // from the message anyway).
    with_seeded_torch(0, [&] { sub = full_->with_widths(widths); });
    sub->to(setup_.device);
  }
  model_ = sub;
}

Message FedDropoutClient::fit(const Message& in, ClientContext& ctx) {
  use_model_for(in);
  return FedAvgClient::fit(in, ctx);
}

Message FedDropoutClient::evaluate(const Message& in, ClientContext& ctx) {
  use_model_for(in);
  return FedAvgClient::evaluate(in, ctx);
}

AlgorithmInfo feddropout_info() {
  return {"feddropout",
          "Federated Dropout: clients train sub-models keeping (1 - feddropout.rate) of each "
          "hidden layer's units",
          false, [](const AlgorithmSetup& s) { return std::make_unique<FedDropoutServer>(s); },
          [](const AlgorithmSetup& s) { return std::make_unique<FedDropoutClient>(s); }};
}

}  // namespace fedpp
