#include "fedpp/algorithms/common/averaging.hpp"

#include "fedpp/algorithms/common/hetero.hpp"  // client_models
#include "fedpp/core/error.hpp"
#include "fedpp/core/seed.hpp"

namespace fedpp {

NamedTensors weighted_average(const std::vector<Reply>& replies, const NamedTensors& like) {
  FEDPP_CHECK(!replies.empty(), "cannot average zero replies");
  double total = 0.0;
  for (const auto& r : replies) total += r.message.metric("num_samples");
  FEDPP_CHECK(total > 0, "replies report zero training samples in total");
  NamedTensors out;
  for (const auto& [name, ref] : like) {
    torch::Tensor acc;
    for (const auto& r : replies) {
      const auto& t = r.message.tensors.at(name);
      FEDPP_CHECK(t.sizes() == ref.sizes(),
                  "client " + std::to_string(r.client_id) + " sent '" + name + "' with shape " +
                      c10::str(t.sizes()) + ", expected " + c10::str(ref.sizes()));
      if (!ref.is_floating_point()) {  // counters such as BatchNorm's num_batches_tracked
        acc = t.clone();
        break;
      }
      auto w = r.message.metric("num_samples") / total;
      auto term = t.to(torch::kDouble) * w;
      acc = acc.defined() ? acc + term : term;
    }
    out.set(name, acc.to(ref.scalar_type()).contiguous());
  }
  return out;
}

AveragingServer::AveragingServer(NamedTensors initial, std::string what)
    : global_(std::move(initial)), what_(std::move(what)) {}

Message AveragingServer::configure_fit(int64_t, int64_t) {
  Message m;
  m.tensors = global_;
  return m;
}

std::optional<NamedTensors> AveragingServer::reply_schema(int64_t, const Message& sent) const {
  return sent.tensors;
}

void AveragingServer::aggregate(int64_t, const std::vector<Reply>& replies) {
  if (replies.empty()) return;  // nothing arrived: keep the shared tensors
  global_ = weighted_average(replies, global_);
}

Message AveragingServer::save_state() const {
  Message m;
  m.tensors = global_;
  return m;
}

void AveragingServer::load_state(const Message& state) {
  for (const auto& [name, t] : global_)
    FEDPP_CHECK(state.tensors.contains(name) && state.tensors.at(name).sizes() == t.sizes(),
                "checkpoint does not match " + what_ + " (tensor '" + name + "')");
  FEDPP_CHECK(state.tensors.size() == global_.size(),
              "checkpoint holds " + std::to_string(state.tensors.size()) + " tensors, " + what_ +
                  " has " + std::to_string(global_.size()));
  global_ = state.tensors.clone();
}

namespace {
NamedTensors seeded_model_state(const AlgorithmSetup& setup, const std::string& name) {
  client_models(setup.cfg, setup.num_clients);  // validates hetero.* before training
  auto model = make_model_seeded(name, setup.spec, derive_seed(setup.seed, Purpose::kInit, {0}));
  return module_state(*model).clone();
}
}  // namespace

SharedModelServer::SharedModelServer(const AlgorithmSetup& setup, const std::string& model_key)
    : AveragingServer(seeded_model_state(setup, setup.cfg.get_choice(model_key, "cnn5",
                                                                     model_names())),
                      "shared model '" + setup.cfg.get_string(model_key, "cnn5") + "'") {}

std::optional<Message> SharedModelServer::configure_evaluate(int64_t, int64_t) {
  return Message{};
}

}  // namespace fedpp
