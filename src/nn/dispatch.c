/* dispatch.c: picks the per-level kernel table (kern_int.h) for the level of
 * shelf_cpu_level_get(), and describes the choice (cpu.h). */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "kern_int.h"

const shelf__kern *shelf__kern_for(shelf_cpu_level level)
{
    switch (level) {
    case SHELF_CPU_AVX512_BF16: return &shelf__kern_bf16_avx512;
    case SHELF_CPU_AVX512: return &shelf__kern_avx512;
    case SHELF_CPU_AVX2: return &shelf__kern_avx2;
    default: return &shelf__kern_generic;
    }
}

const shelf__kern *shelf__kern_get(void)
{
    return shelf__kern_for(shelf_cpu_level_get());
}

#ifndef SHELF_BUILD_MARCH
#define SHELF_BUILD_MARCH ""
#endif

int shelf_cpu_describe_json(char *buf, size_t n)
{
    const shelf__kern *k = shelf__kern_get();
    const char *lv = shelf_cpu_level_name(k->level);
    char model[128];
    /* the model name is cpuid's text: keep it JSON-safe */
    size_t j = 0;
    for (const char *p = shelf_cpu_model(); *p && j + 1 < sizeof model; p++)
        model[j++] = (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20) ? ' ' : *p;
    model[j] = '\0';
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int family, model_no;
    shelf_cpu_signature(&family, &model_no);
    return snprintf(buf, n,
                    "{\"cpu\":\"%s\",\"family\":%d,\"model\":%d,\"cores\":%ld,\"detected\":\"%s\",\"level\":\"%s\",\"kernels\":{"
                    "\"cehead_f32\":\"%s\",\"cehead_bf16\":\"%s\",\"exp_softmax\":\"%s\",\"layernorm\":\"%s\","
                    "\"gelu\":\"%s\",\"attention_softmax\":\"%s\",\"adamw\":\"%s\"},\"build_march\":\"%s\"}",
                    model, family, model_no, cores, shelf_cpu_level_name(shelf_cpu_detected()),
                    shelf_cpu_level_name(shelf_cpu_level_get()), lv, k->bf16 ? "avx512bf16" : "as f32", lv, lv,
                    lv, lv, lv, SHELF_BUILD_MARCH);
}
