#include "fedpp/algorithms/common/heads.hpp"

#include <set>

#include "fedpp/algorithms/common/hetero.hpp"  // head_state, head_tensor_names
#include "fedpp/core/error.hpp"
#include "fedpp/fl/training.hpp"

namespace fedpp {

NamedTensors shared_head_init(const AlgorithmSetup& setup, const std::vector<std::string>& models,
                              uint64_t seed, const std::string& method) {
  FEDPP_CHECK(!models.empty(), method + " needs at least one client (data.num_clients)");
  auto first = make_model_seeded(models[0], setup.spec, seed);
  auto head = head_state(*first).clone();
  for (const auto& name : std::set<std::string>(models.begin(), models.end())) {
    auto m = make_model_seeded(name, setup.spec, 0);
    auto h = head_state(*m);
    bool same = h.names() == head.names();
    for (const auto& [n, t] : h) same = same && head.contains(n) && head.at(n).sizes() == t.sizes();
    FEDPP_CHECK(same, method + " shares the head, but model '" + name + "' has another head than '" +
                          models[0] + "'; choose hetero.models whose heads match");
  }
  return head;
}

void load_head(Model& m, const NamedTensors& head) {
  auto names = head_tensor_names(m);
  FEDPP_CHECK(head.names() == names, "the message does not hold this model's head (" +
                                         std::to_string(head.size()) + " tensors, expected " +
                                         std::to_string(names.size()) + ")");
  load_module_state(m, head, /*strict=*/false);
}

std::optional<ExportedModel> export_with_head(const std::string& model, const ClientState& state,
                                              const std::string& prefix, const Message& shared) {
  if (shared.tensors.empty()) return std::nullopt;
  auto out = export_private(model, state, prefix);
  if (!out) return std::nullopt;
  for (const auto& [name, t] : shared.tensors) {
    FEDPP_CHECK(out->tensors.contains(name) && out->tensors.at(name).sizes() == t.sizes(),
                "the shared head tensor '" + name + "' does not fit the private " + model +
                    " model: client state and server disagree (start with a fresh state)");
    out->tensors.set(name, t.detach().cpu().clone());
  }
  return out;
}

}  // namespace fedpp
