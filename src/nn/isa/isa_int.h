/* isa_int.h: what a file under src/nn/isa/ needs to be compiled once per
 * instruction-set level (CMakeLists.txt builds this folder three times).
 *
 * The build defines for each copy:
 *   SHELF_ISA_SUFFIX   _generic, _avx2 or _avx512: appended to every
 *                      non-static name by ISA_FN, so the copies link side
 *                      by side;
 *   SHELF_ISA_AVX512   1 in the AVX-512 copy (compiled with -march=x86-64-v4
 *                      -mavx512bf16);
 *   SHELF_ISA_AVX2     1 in the AVX2 copy (-march=x86-64-v3).
 * Code selects its vector path with these, never with __AVX512F__ or
 * __AVX2__, so a -march=native build still has a plain-C generic copy.
 * Which copy runs is decided at run time (kern_int.h). */
#ifndef SHELF_NN_ISA_INT_H
#define SHELF_NN_ISA_INT_H

#ifndef SHELF_ISA_SUFFIX
#error "src/nn/isa/ files are compiled through CMakeLists.txt's per-level object libraries"
#endif

#define ISA_CAT2(a, b) a##b
#define ISA_CAT(a, b) ISA_CAT2(a, b)
#define ISA_FN(name) ISA_CAT(name, SHELF_ISA_SUFFIX)

#if defined(SHELF_ISA_AVX512) || defined(SHELF_ISA_AVX2)
#include <immintrin.h>
#endif

#endif
