#include "fedpp/runtime/threads.hpp"

#include <dlfcn.h>
#include <torch/torch.h>

#include <cstdlib>
#include <cstring>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace fedpp {

void set_blas_threads(int n) {
  using SetFn = void (*)(int);
  static SetFn fn = reinterpret_cast<SetFn>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
  if (fn) fn(n);
}

bool tune_allocator() {
  static const bool applied = [] {
#if defined(__GLIBC__)
    const char* env = std::getenv("FEDPP_MALLOC_TUNING");
    if (env && std::strcmp(env, "0") == 0) return false;
    // Fixed thresholds also switch off glibc's dynamic threshold, which would otherwise creep up
    // one freed block at a time. 32 MiB is the largest mmap threshold mallopt accepts on 64-bit.
    const bool mmap_ok = mallopt(M_MMAP_THRESHOLD, 32 << 20) == 1;
    const bool trim_ok = mallopt(M_TRIM_THRESHOLD, 1 << 30) == 1;
    return mmap_ok && trim_ok;
#else
    return false;
#endif
  }();
  return applied;
}

void set_worker_threads(int intra_op) {
  tune_allocator();
  set_blas_threads(1);
  at::set_num_threads(intra_op);
}

}  // namespace fedpp
