// A head (the classifier: representation -> classes) shared between heterogeneous client
// models: LG-FedAvg averages it, FedGH trains it on the server. Shared by those methods; no
// method's own logic here. Errors: fedpp::Error naming the models or tensors that do not fit.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "fedpp/fl/algorithm.hpp"
#include "fedpp/models/model.hpp"

namespace fedpp {

// Checks that every client model's head has the same tensor names and shapes; returns the head
// state of client 0's model built from `seed`. `method` names the caller in errors.
NamedTensors shared_head_init(const AlgorithmSetup& setup, const std::vector<std::string>& models,
                              uint64_t seed, const std::string& method);
// Loads `head` into m's head tensors (names and shapes must match; fedpp::Error otherwise).
void load_head(Model& m, const NamedTensors& head);

// The personalised model of a method with a private extractor and a shared head (LG-FedAvg,
// FedGH): the client's private model (state tensors under `prefix`, zoo model `model`) with
// its head replaced by `shared`'s tensors, as evaluation builds it. nullopt when the client
// never trained or `shared` is empty (no server message to build it with); fedpp::Error when a
// shared tensor is not in the private model or has another shape.
std::optional<ExportedModel> export_with_head(const std::string& model, const ClientState& state,
                                              const std::string& prefix, const Message& shared);

}  // namespace fedpp
