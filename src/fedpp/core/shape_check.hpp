// Checking a tensor shape that comes from outside the process (a data file's header, a wire
// message, a codec header) before any tensor of that shape is made. Torch-free.
//
// Why more than "numel fits": LibTorch computes contiguous strides as products of the sizes, and
// an empty tensor ({0, 2^31, 2^31}) has numel 0 but strides that overflow int64; LibTorch 1.13
// then reads some overflowed strides as symbolic sizes and crashes (a fuzzer found this through
// an IDX header). So every size counts as at least 1 in the product checked here.
#pragma once
#include <fedpp/core/error.hpp>

#include <cstdint>
#include <string>

namespace fedpp {

// Returns the element count of a shape of `rank` sizes. Throws fedpp::Error, "<what>: ..."
// naming the problem, when a size is negative or when the sizes, each counted as at least 1,
// multiply past max_elements (so every stride of a contiguous tensor of this shape fits int64).
// max_elements must be positive.
template <typename Size>
int64_t checked_numel(const Size* sizes, size_t rank, int64_t max_elements,
                      const std::string& what) {
  int64_t numel = 1, span = 1;  // span: the product with zero sizes counted as 1
  for (size_t i = 0; i < rank; ++i) {
    const int64_t s = static_cast<int64_t>(sizes[i]);
    FEDPP_CHECK(s >= 0, what + ": size " + std::to_string(s) + " of dimension " +
                            std::to_string(i) + " is negative");
    const int64_t f = s == 0 ? 1 : s;
    FEDPP_CHECK(span <= max_elements / f,
                what + ": its sizes multiply past " + std::to_string(max_elements) +
                    " elements (dimension " + std::to_string(i) + " is " + std::to_string(s) + ")");
    span *= f;
    numel = s == 0 ? 0 : numel * s;
  }
  return numel;
}

}  // namespace fedpp
