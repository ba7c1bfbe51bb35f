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

std::string huge_page_tunables(const HugePageInputs& in) {
  constexpr const char* kTunable = "glibc.malloc.hugetlb";
  if (in.fedpp_hugepages == "0" || !in.reexec_marker.empty()) return "";
  if (in.glibc_tunables.find(kTunable) != std::string::npos) return "";  // the user's, or ours
  int major = 0, minor = 0;  // the tunable exists from glibc 2.35 on
  if (std::sscanf(in.libc_version.c_str(), "%d.%d", &major, &minor) != 2 ||
      major * 1000 + minor < 2035)
    return "";
  // "[never]": nothing to gain; "[always]": large mappings get huge pages already.
  if (in.thp_mode.find("[madvise]") == std::string::npos) return "";
  if (in.ld_preload.find("vgpreload") != std::string::npos) return "";  // under valgrind
  const auto slash = in.exe.rfind('/');
  const std::string base = in.exe.substr(slash == std::string::npos ? 0 : slash + 1);
  if (base.rfind("ld-", 0) == 0 || base.empty()) return "";  // started through the loader
  return in.glibc_tunables + (in.glibc_tunables.empty() ? "" : ":") + kTunable + "=1";
}

void use_huge_pages(char** argv) {
#if defined(__GLIBC__) && defined(__linux__)
  constexpr const char* kMarker = "FEDPP_HUGEPAGES_REEXEC";
  auto env = [](const char* k) {
    const char* v = std::getenv(k);
    return std::string(v ? v : "");
  };
  if (!env(kMarker).empty()) {  // this is the re-executed program: never a second time
    unsetenv(kMarker);
    return;
  }
  HugePageInputs in;
  in.glibc_tunables = env("GLIBC_TUNABLES");
  in.fedpp_hugepages = env("FEDPP_HUGEPAGES");
  in.ld_preload = env("LD_PRELOAD");
  in.libc_version = gnu_get_libc_version();
  std::ifstream thp("/sys/kernel/mm/transparent_hugepage/enabled");
  std::getline(thp, in.thp_mode);
  char exe[4096];
  const ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) return;
  in.exe.assign(exe, static_cast<size_t>(n));
  const std::string tunables = huge_page_tunables(in);
  if (tunables.empty()) return;
  const bool had = std::getenv("GLIBC_TUNABLES") != nullptr;
  if (setenv("GLIBC_TUNABLES", tunables.c_str(), 1) != 0 || setenv(kMarker, "1", 1) != 0) return;
  execv("/proc/self/exe", argv);
  // exec failed: go on as we are, with the environment as it was.
  unsetenv(kMarker);
  if (had)
    setenv("GLIBC_TUNABLES", in.glibc_tunables.c_str(), 1);
  else
    unsetenv("GLIBC_TUNABLES");
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
