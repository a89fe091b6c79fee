/* cpu.c: the instruction-set level of the kernels (cpu.h): detection through
 * GCC's cpuid builtins (which also check that the OS saves the wide
 * registers), the SHELF_CPU override, and the CPU's model name. */
#include "shelf/cpu.h"

#include <cpuid.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "shelf/core.h"

static const char *const level_names[SHELF_CPU_N_LEVELS] = {"generic", "avx2", "avx512", "avx512bf16"};

static atomic_int detected_level = -1; /* -1: not yet computed */
static atomic_int chosen_level = -1;

const char *shelf_cpu_level_name(shelf_cpu_level level)
{
    return (int)level >= 0 && level < SHELF_CPU_N_LEVELS ? level_names[level] : "?";
}

int shelf_cpu_level_parse(const char *s, shelf_cpu_level *out)
{
    for (int l = 0; s && l < SHELF_CPU_N_LEVELS; l++)
        if (strcmp(s, level_names[l]) == 0) {
            *out = (shelf_cpu_level)l;
            return 0;
        }
    return SHELF_EINVAL;
}

static shelf_cpu_level detect(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) return SHELF_CPU_GENERIC;
    if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512bw") ||
        !__builtin_cpu_supports("avx512dq") || !__builtin_cpu_supports("avx512vl"))
        return SHELF_CPU_AVX2;
    return __builtin_cpu_supports("avx512bf16") ? SHELF_CPU_AVX512_BF16 : SHELF_CPU_AVX512;
#else
    return SHELF_CPU_GENERIC;
#endif
}

shelf_cpu_level shelf_cpu_detected(void)
{
    int l = atomic_load(&detected_level);
    if (l < 0) {
        l = (int)detect();
        atomic_store(&detected_level, l);
    }
    return (shelf_cpu_level)l;
}

/* the detected level lowered by SHELF_CPU */
static shelf_cpu_level from_env(void)
{
    shelf_cpu_level det = shelf_cpu_detected(), want;
    const char *s = getenv("SHELF_CPU");
    if (!s || !*s) return det;
    if (shelf_cpu_level_parse(s, &want) != 0) {
        shelf_warn("SHELF_CPU=%s is not one of generic|avx2|avx512|avx512bf16; using %s", s,
                   shelf_cpu_level_name(det));
        return det;
    }
    if (want > det) {
        shelf_warn("SHELF_CPU=%s is above what this CPU supports; using %s", s, shelf_cpu_level_name(det));
        return det;
    }
    return want;
}

shelf_cpu_level shelf_cpu_level_get(void)
{
    int l = atomic_load_explicit(&chosen_level, memory_order_acquire);
    if (l >= 0) return (shelf_cpu_level)l;
    int expect = -1;
    l = (int)from_env();
    /* two first callers may both read the environment; one value wins */
    if (!atomic_compare_exchange_strong(&chosen_level, &expect, l)) l = expect;
    return (shelf_cpu_level)l;
}

shelf_cpu_level shelf_cpu_force(shelf_cpu_level level)
{
    shelf_cpu_level det = shelf_cpu_detected();
    if ((int)level < 0) level = SHELF_CPU_GENERIC;
    if (level > det) level = det;
    atomic_store_explicit(&chosen_level, (int)level, memory_order_release);
    return level;
}

const char *shelf_cpu_model(void)
{
    static char model[49];
    static atomic_int done;
    if (atomic_load(&done)) return model;
    char buf[49] = "unknown";
#if defined(__x86_64__) || defined(__i386__)
    unsigned r[12];
    if (__get_cpuid_max(0x80000000u, NULL) >= 0x80000004u) {
        for (unsigned i = 0; i < 3; i++) __get_cpuid(0x80000002u + i, &r[4 * i], &r[4 * i + 1], &r[4 * i + 2], &r[4 * i + 3]);
        memcpy(buf, r, 48);
        buf[48] = '\0';
        /* trim the padding spaces the brand string carries */
        char *p = buf;
        while (*p == ' ') p++;
        memmove(buf, p, strlen(p) + 1);
        for (size_t n = strlen(buf); n && buf[n - 1] == ' '; n--) buf[n - 1] = '\0';
        if (!*buf) strcpy(buf, "unknown");
    }
#endif
    memcpy(model, buf, sizeof model); /* same bytes from any racing caller */
    atomic_store(&done, 1);
    return model;
}

void shelf_cpu_signature(int *family, int *model)
{
    unsigned a = 0, b, c, d;
    *family = *model = 0;
#if defined(__x86_64__) || defined(__i386__)
    if (!__get_cpuid(1, &a, &b, &c, &d)) return;
#endif
    unsigned fam = (a >> 8) & 0xf, mod = (a >> 4) & 0xf;
    if (fam == 0xf) fam += (a >> 20) & 0xff;
    if (fam == 0x6 || fam >= 0xf) mod |= ((a >> 16) & 0xf) << 4;
    *family = (int)fam, *model = (int)mod;
}
