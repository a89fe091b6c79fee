/* json_text.c: JSON scalar values as text (json_int.h). */
#include "data/json_int.h"

#include <math.h>
#include <stdio.h>

int shelf__json_scalar_text(const cJSON *j, char *buf, size_t cap, const char **val)
{
    if (cJSON_IsString(j) && j->valuestring) {
        *val = j->valuestring;
    } else if (cJSON_IsNumber(j)) {
        double v = j->valuedouble;
        if (v == floor(v) && fabs(v) < 1e15) snprintf(buf, cap, "%lld", (long long)v);
        else snprintf(buf, cap, "%.15g", v);
        *val = buf;
    } else if (cJSON_IsBool(j)) {
        *val = cJSON_IsTrue(j) ? "true" : "false";
    } else {
        return 0;
    }
    return 1;
}

int shelf__json_kv(const cJSON *m, char *buf, size_t cap)
{
    char num[40];
    const char *v;
    if (!m->string || !shelf__json_scalar_text(m, num, sizeof num, &v)) return -1;
    int n = snprintf(buf, cap, "%s=%s", m->string, v);
    return n > 0 && (size_t)n < cap ? n : -1;
}
