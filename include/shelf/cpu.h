/* cpu.h: which instruction-set level the numeric kernels run at. The library
 * is built for a portable baseline and carries each hot kernel (the
 * cross-entropy head, exp/softmax, LayerNorm, GELU, attention's softmax,
 * AdamW) for several levels; the level is chosen once, at the first kernel
 * call, from the CPU's features, and can be lowered (never raised) by the
 * SHELF_CPU environment variable or shelf_cpu_force(). */
#ifndef SHELF_CPU_H
#define SHELF_CPU_H

#include <stddef.h>

#include "shelf/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Kernel levels, lowest first. GENERIC: plain C loops (the naive twins of
 * the vector kernels); AVX2: AVX2 + FMA, 8 floats a register; AVX512:
 * AVX-512 F/BW/DQ/VL, 16 floats a register; AVX512_BF16: the same plus the
 * bfloat16 dot products that the head's SHELF_NN_BF16 precision uses (below
 * this level, BF16 precision computes as F32). */
typedef enum {
    SHELF_CPU_GENERIC = 0,
    SHELF_CPU_AVX2 = 1,
    SHELF_CPU_AVX512 = 2,
    SHELF_CPU_AVX512_BF16 = 3,
} shelf_cpu_level;

#define SHELF_CPU_N_LEVELS 4

/* The highest level this CPU (and its operating system) supports. Thread
 * safe; computed once. */
SHELF_API shelf_cpu_level shelf_cpu_detected(void);

/* The level the kernels run at: the detected one, lowered by SHELF_CPU
 * (generic|avx2|avx512|avx512bf16) when set. An unknown value or a level
 * above the detected one is reported once on the log (warn) and ignored or
 * clamped. Thread safe. */
SHELF_API shelf_cpu_level shelf_cpu_level_get(void);

/* Sets the level for all later kernel calls, clamped to the detected one;
 * returns the level set. For tests and benchmarks: call it while no kernel
 * runs on another thread. */
SHELF_API shelf_cpu_level shelf_cpu_force(shelf_cpu_level level);

/* "generic", "avx2", "avx512", "avx512bf16"; "?" for anything else. */
SHELF_API const char *shelf_cpu_level_name(shelf_cpu_level level);

/* Parses a name above; 0 on success, SHELF_EINVAL otherwise (out untouched). */
SHELF_API int shelf_cpu_level_parse(const char *s, shelf_cpu_level *out);

/* The CPU's model name from cpuid ("AMD EPYC 7B13", ...); static storage;
 * "unknown" where the CPU does not say. */
SHELF_API const char *shelf_cpu_model(void);

/* The CPU's family and model numbers from cpuid leaf 1 (base plus extended
 * fields, as Linux's /proc/cpuinfo shows them: AMD Zen 4 is family 25, Intel
 * Sapphire Rapids family 6 model 143); both 0 where cpuid does not say. */
SHELF_API void shelf_cpu_signature(int *family, int *model);

/* One JSON object on one line describing the machine and the kernels chosen:
 * {"cpu":"...","family":25,"model":17,"cores":N,"detected":"avx512bf16","level":"avx2",
 *  "kernels":{"cehead":"avx2",...},"build_march":"x86-64-v3"}.
 * Writes at most n bytes including the NUL; returns the length it needed
 * (as snprintf). */
SHELF_API int shelf_cpu_describe_json(char *buf, size_t n);

#ifdef __cplusplus
}
#endif
#endif
