// Process settings for training speed: threads for LibTorch and OpenBLAS, and glibc malloc's
// policy for the large, short-lived blocks that tensors are.
//
// Threads: LibTorch 1.13 defaults to one intra-op thread and OpenBLAS starts threads of its own;
// on a small machine the fastest setting measured was `workers` client threads, each with
// `threads` intra-op (OpenMP) threads, OpenBLAS at 1.
//
// Allocator: by default glibc serves a block of 128 KiB or more with mmap and, on free, returns it
// (or the free top of a heap above 128 KiB) to the kernel, so every training step pays page faults
// to zero the same activation and gradient buffers again (bench/README.md has the measured cost:
// most of a ResNet-8 step at batch 64 went to the kernel's page faults). `tune_allocator`
// keeps blocks up to 32 MiB (glibc's largest mmap threshold) in the heap and freed memory mapped
// up to 1 GiB, so steps reuse warm pages. Peak memory is unchanged; memory freed after a peak is
// kept for reuse instead of handed back. Set FEDPP_MALLOC_TUNING=0 to keep glibc's defaults (for
// comparison). Not glibc: no-op.
//
// Huge pages: on a Linux whose transparent huge pages are in "madvise" mode (Debian's default),
// glibc (2.35 or newer) backs malloc's memory with 2 MiB pages when started with
// GLIBC_TUNABLES=glibc.malloc.hugetlb=1: a 100 MB message or a large batch then costs ~50 page
// faults instead of ~25,000, and fewer TLB misses. glibc reads the variable only when a program
// starts, so `use_huge_pages(argv)`, called first thing in main(), re-executes the program once
// with it set (the variable passes on to child processes). Measured effect in bench/README.md.
// Set FEDPP_HUGEPAGES=0 to run without.
#pragma once

#include <string>

namespace fedpp {

// OpenBLAS's own thread pool to `n` threads (no-op when OpenBLAS is not the BLAS in use).
void set_blas_threads(int n);
// Intra-op threads for the calling thread (OpenMP's setting is per thread) and BLAS at 1; also
// applies tune_allocator() once per process.
void set_worker_threads(int intra_op);
// The malloc policy above, applied once per process (thread-safe, idempotent). Returns whether it
// is in effect.
bool tune_allocator();
// The huge-page setting above. Returns only when nothing is to be done (see
// huge_page_tunables) or when the re-execution failed (the program then runs as it is);
// otherwise the process image is replaced by the same program (/proc/self/exe) with the same
// arguments, once: a marker variable, FEDPP_HUGEPAGES_REEXEC, stops a second time whatever
// glibc does with GLIBC_TUNABLES. Call first thing in main(), before any thread starts.
void use_huge_pages(char** argv);

// What use_huge_pages decides, from its inputs alone (empty string: unset or unreadable).
struct HugePageInputs {
  std::string glibc_tunables;   // GLIBC_TUNABLES
  std::string fedpp_hugepages;  // FEDPP_HUGEPAGES ("0": off)
  std::string reexec_marker;    // FEDPP_HUGEPAGES_REEXEC (set: already re-executed)
  std::string ld_preload;       // LD_PRELOAD (valgrind's preload: no re-execution)
  std::string libc_version;     // gnu_get_libc_version(), e.g. "2.36"
  std::string thp_mode;         // /sys/kernel/mm/transparent_hugepage/enabled
  std::string exe;              // /proc/self/exe's target (ld.so: started through the loader)
};
// The GLIBC_TUNABLES value to re-execute with (the user's tunables, then
// glibc.malloc.hugetlb=1), or "" when the program should run as it is: FEDPP_HUGEPAGES=0,
// already re-executed, hugetlb already in GLIBC_TUNABLES, glibc older than 2.35, transparent
// huge pages not in "madvise" mode ("never": none; "always": large mappings have them
// already), under valgrind, or started through the dynamic loader.
std::string huge_page_tunables(const HugePageInputs& in);

}  // namespace fedpp
