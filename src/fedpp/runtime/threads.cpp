#include "fedpp/runtime/threads.hpp"

#include <dlfcn.h>
#include <torch/torch.h>

namespace fedpp {

void set_blas_threads(int n) {
  using SetFn = void (*)(int);
  static SetFn fn = reinterpret_cast<SetFn>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
  if (fn) fn(n);
}

void set_worker_threads(int intra_op) {
  set_blas_threads(1);
  at::set_num_threads(intra_op);
}

}  // namespace fedpp
