// Shape helpers shared by the zoo models: input checks and the analytic MAC count.
#pragma once
#include <fedpp/core/error.hpp>
#include <fedpp/models/model.hpp>

#include <string>
#include <vector>

namespace fedpp {

// "{3,32,32}"
inline std::string shape_string(const std::vector<int64_t>& shape) {
  std::string s = "{";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? "," : "") + std::to_string(shape[i]);
  return s + "}";
}

// Throws fedpp::Error unless spec is {C,H,W} with positive entries and at least one class.
inline void check_input_shape(const std::string& model, const ModelSpec& spec) {
  bool ok = spec.input_shape.size() == 3;
  for (int64_t d : spec.input_shape) ok = ok && d >= 1;
  FEDPP_CHECK(ok, "model " + model + " needs an input shape {C,H,W} of positive sizes, got " +
                      shape_string(spec.input_shape));
  FEDPP_CHECK(spec.num_classes >= 1, "model " + model + " needs at least one class, got " +
                                         std::to_string(spec.num_classes));
}

// Multiply-adds of a convolution producing an out_h x out_w x out_c map from in_c channels
// with a k x k kernel (groups = 1).
inline int64_t conv_macs(int64_t out_h, int64_t out_w, int64_t out_c, int64_t in_c, int64_t k) {
  return out_h * out_w * out_c * in_c * k * k;
}

}  // namespace fedpp
