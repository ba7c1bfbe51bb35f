#include "fedpp/runtime/threads.hpp"

#include <dlfcn.h>
#include <torch/torch.h>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#if defined(__GLIBC__)
#include <gnu/libc-version.h>
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

void use_huge_pages(char** argv) {
#if defined(__GLIBC__) && defined(__linux__)
  const char* off = std::getenv("FEDPP_HUGEPAGES");
  if (off && std::strcmp(off, "0") == 0) return;
  constexpr const char* kTunable = "glibc.malloc.hugetlb";
  const char* have = std::getenv("GLIBC_TUNABLES");
  std::string tunables = have ? have : "";
  if (tunables.find(kTunable) != std::string::npos) return;  // set: by us or by the user
  int major = 0, minor = 0;  // the tunable exists from glibc 2.35 on
  if (std::sscanf(gnu_get_libc_version(), "%d.%d", &major, &minor) != 2 ||
      major * 1000 + minor < 2035)
    return;
  std::ifstream thp("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string mode;
  if (!std::getline(thp, mode) || mode.find("[never]") != std::string::npos) return;
  tunables += std::string(tunables.empty() ? "" : ":") + kTunable + "=1";
  if (setenv("GLIBC_TUNABLES", tunables.c_str(), 1) != 0) return;
  execv("/proc/self/exe", argv);
  // exec failed (no /proc, say): go on as we are; the variable stays for child processes.
#else
  (void)argv;
#endif
}

void set_worker_threads(int intra_op) {
  tune_allocator();
  set_blas_threads(1);
  at::set_num_threads(intra_op);
}

}  // namespace fedpp
