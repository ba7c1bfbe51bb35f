// FEDPP_CODEC_KERNEL marks a codec kernel (a loop over the whole tensor) that GCC compiles twice,
// for AVX-512 (x86-64-v4: 64-bit multiplies for the counter-based random streams, 16 floats a
// step) and for the baseline x86-64, and picks when the program loads (target_clones, an ifunc).
// Both clones compute the same bytes: the kernels' files are compiled with -ffp-contract=off
// (no fused multiply-add where the baseline has none), nothing reassociates floating-point sums,
// and CodecPipeline.EncodedBytesArePinned checks the bytes against hashes taken from the scalar
// code. Other compilers and CPUs get the baseline only. AVX2 alone (x86-64-v3) is not a clone:
// it has no 64-bit multiply and measured slower than the baseline on the quantiser.
#pragma once

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && __GNUC__ >= 12 && \
    !defined(FEDPP_CODEC_NO_CLONES)
#define FEDPP_CODEC_KERNEL __attribute__((target_clones("arch=x86-64-v4", "default")))
#else
#define FEDPP_CODEC_KERNEL
#endif

// For the helpers a kernel calls: inlined into each clone, so that they are compiled for its
// instruction set too (a helper left out of line would run the baseline code in both).
#if defined(__GNUC__)
#define FEDPP_CODEC_INLINE __attribute__((always_inline)) inline
#else
#define FEDPP_CODEC_INLINE inline
#endif
