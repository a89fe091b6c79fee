/* log.c: leveled logging to stderr as plain lines or JSON lines. */
#include "shelf/core.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static shelf_log_level log_level = SHELF_LOG_INFO;
static int log_json;

static const char *level_names[] = {"debug", "info", "warn", "error", "off"};

void shelf_log_set_level(shelf_log_level level) { log_level = level; }
shelf_log_level shelf_log_get_level(void) { return log_level; }
void shelf_log_set_json(int json) { log_json = json != 0; }

int shelf_log_level_parse(const char *s, shelf_log_level *out)
{
    for (int i = 0; i <= SHELF_LOG_OFF; i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            *out = (shelf_log_level)i;
            return 0;
        }
    }
    if (strcasecmp(s, "warning") == 0) {
        *out = SHELF_LOG_WARN;
        return 0;
    }
    return SHELF_EINVAL;
}

void shelf_log(shelf_log_level level, const char *fmt, ...)
{
    if (level < log_level || level >= SHELF_LOG_OFF) return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[64];
    snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);

    char line[4096];
    int n;
    if (log_json) {
        /* cJSON does the escaping of the message */
        cJSON *o = cJSON_CreateObject();
        char *text = NULL;
        if (o && cJSON_AddStringToObject(o, "ts", when) &&
            cJSON_AddStringToObject(o, "level", level_names[level]) &&
            cJSON_AddStringToObject(o, "msg", msg))
            text = cJSON_PrintUnformatted(o);
        n = snprintf(line, sizeof line, "%s\n", text ? text : "{\"level\":\"error\",\"msg\":\"log: out of memory\"}");
        free(text);
        cJSON_Delete(o);
    } else {
        n = snprintf(line, sizeof line, "%s %-5s %s\n", when, level_names[level], msg);
    }
    if (n < 0) return;
    if ((size_t)n >= sizeof line) {
        n = sizeof line - 1;
        line[n - 1] = '\n';
    }
    /* one write per line so that threads do not interleave */
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w;
}
