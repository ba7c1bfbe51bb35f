#include "fedpp/data/dataset.hpp"

#include <nlohmann/json.hpp>

namespace fedpp {

std::vector<int64_t> Dataset::sample_shape() const {
  if (!x.defined() || x.dim() < 2) return {};
  return std::vector<int64_t>(x.sizes().begin() + 1, x.sizes().end());
}

Dataset Dataset::subset(const std::vector<int64_t>& idx) const {
  auto index = torch::tensor(idx, torch::kInt64);
  Dataset out;
  out.x = x.index_select(0, index).contiguous();
  out.y = y.index_select(0, index).contiguous();
  out.mean = mean;
  out.sd = sd;
  out.num_classes = num_classes;
  out.name = name;
  return out;
}

torch::Tensor Dataset::normalised(const torch::Tensor& pixels) const {
  // The loaders' own sequence of operations (data/loaders.cpp), so the floats are the same.
  return pixels.to(torch::kFloat32).div_(255.f).sub_(mean).div_(sd);
}

torch::Tensor Dataset::inputs(int64_t start, int64_t end) const {
  auto rows = x.slice(0, start, end);
  return x.scalar_type() == torch::kUInt8 ? normalised(rows) : rows;
}

torch::Tensor Dataset::inputs(const torch::Tensor& idx) const {
  auto rows = x.index_select(0, idx);
  return x.scalar_type() == torch::kUInt8 ? normalised(rows) : rows;
}

torch::Tensor Dataset::inputs() const {
  return x.scalar_type() == torch::kUInt8 ? normalised(x) : x;
}

std::string FederatedData::summary_json() const {
  nlohmann::json clients_json = nlohmann::json::array();
  int64_t total_train = 0, total_test = 0;
  for (const auto& s : summary) {
    int64_t held = 0;
    for (int64_t c : s.train_per_class) held += c > 0;
    clients_json.push_back({{"client", s.client},
                            {"train_samples", s.train_samples},
                            {"test_samples", s.test_samples},
                            {"classes_held", held},
                            {"train_per_class", s.train_per_class}});
    total_train += s.train_samples;
    total_test += s.test_samples;
  }
  nlohmann::json j = {{"dataset", global_test.name},
                      {"num_classes", global_test.num_classes},
                      {"num_clients", static_cast<int64_t>(summary.size())},
                      {"total_train_samples", total_train},
                      {"total_test_samples", total_test},
                      {"global_test_samples", global_test.size()},
                      {"clients", clients_json}};
  return j.dump(2);
}

}  // namespace fedpp
