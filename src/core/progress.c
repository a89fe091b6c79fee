/* progress.c: a progress bar with rate and ETA on a terminal; silent when
 * stderr is not a terminal or when disabled (--quiet). */
#include "shelf/core.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct shelf_progress {
    char label[48];
    uint64_t total, done;
    double t0, last_draw;
    int active;
    int bytes; /* counts are bytes */
};

void shelf_progress_set_unit(shelf_progress *p, const char *unit)
{
    if (p) p->bytes = unit && strcmp(unit, "B") == 0;
}

void shelf_progress_set_total(shelf_progress *p, uint64_t total)
{
    if (p) p->total = total;
}

shelf_progress *shelf_progress_new(const char *label, uint64_t total, int enabled)
{
    shelf_progress *p = calloc(1, sizeof *p);
    if (!p) return NULL; /* a missing bar is not an error: callers pass NULL on */
    snprintf(p->label, sizeof p->label, "%s", label ? label : "");
    p->total = total;
    p->t0 = shelf_now();
    p->last_draw = 0;
    p->active = enabled && shelf_stderr_is_tty();
    return p;
}

static void human(char *buf, size_t cap, double v, int bytes)
{
    const char *u = bytes ? "B" : "";
    if (v >= 1e9) snprintf(buf, cap, "%.2fG%s", v / 1e9, u);
    else if (v >= 1e6) snprintf(buf, cap, "%.2fM%s", v / 1e6, u);
    else if (v >= 1e4) snprintf(buf, cap, "%.1fk%s", v / 1e3, u);
    else snprintf(buf, cap, "%.0f%s", v, u);
}

static void draw(shelf_progress *p, const char *note, int final)
{
    double el = shelf_now() - p->t0;
    double rate = el > 0 ? (double)p->done / el : 0;
    char done[16], total[16], rs[16];
    human(done, sizeof done, (double)p->done, p->bytes);
    human(total, sizeof total, (double)p->total, p->bytes);
    human(rs, sizeof rs, rate, p->bytes);
    char line[256];
    int n;
    if (p->total) {
        double f = (double)p->done / (double)p->total;
        if (f > 1) f = 1;
        char bar[31];
        int w = (int)(f * 30);
        for (int i = 0; i < 30; i++) bar[i] = i < w ? '#' : '.';
        bar[30] = '\0';
        double eta = rate > 0 ? (double)(p->total - (p->done < p->total ? p->done : p->total)) / rate : 0;
        if (final)
            n = snprintf(line, sizeof line, "\r%s [%s] %s/%s %s/s %.1fs%s%s\033[K\n", p->label, bar,
                         done, total, rs, el, note ? " " : "", note ? note : "");
        else
            n = snprintf(line, sizeof line, "\r%s [%s] %3.0f%% %s/%s %s/s ETA %.0fs%s%s\033[K", p->label,
                         bar, f * 100, done, total, rs, eta, note ? " " : "", note ? note : "");
    } else {
        n = snprintf(line, sizeof line, "\r%s %s %s/s %.1fs%s%s\033[K%s", p->label, done, rs, el,
                     note ? " " : "", note ? note : "", final ? "\n" : "");
    }
    if (n > 0) {
        ssize_t w = write(STDERR_FILENO, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
        (void)w;
    }
}

void shelf_progress_update(shelf_progress *p, uint64_t done, const char *note)
{
    if (!p) return;
    p->done = done;
    if (!p->active) return;
    double now = shelf_now();
    if (now - p->last_draw < 0.1) return;
    p->last_draw = now;
    draw(p, note, 0);
}

void shelf_progress_finish(shelf_progress *p)
{
    if (!p) return;
    if (p->active) draw(p, NULL, 1);
    free(p);
}
