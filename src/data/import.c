/* import.c: the importers' common driver (one transaction per file, result,
 * timing), the growing line reader, the error helpers that name
 * file:line:field, and the field parsers. The formats live in import_*.c. */
#define _XOPEN_SOURCE 700 /* strptime */
#include "import_int.h"

#include "core/check_int.h"
#include "store/meta_int.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <sys/stat.h>
#include <lzma.h>
#include <openssl/evp.h>
#include <unistd.h>
#include <zlib.h>

/* ==== options ======================================================================== */

static const char *const format_names[] = {
    [SHELF_FMT_S3REC] = "s3rec", [SHELF_FMT_PAIRS] = "pairs",   [SHELF_FMT_CSV] = "csv",
    [SHELF_FMT_JSONL] = "jsonl", [SHELF_FMT_ML100K] = "ml100k", [SHELF_FMT_TAOBAO] = "taobao",
};
#define N_FORMATS (sizeof format_names / sizeof format_names[0])

int shelf_import_format_parse(const char *s, shelf_import_format *out)
{
    if (!s) return SHELF_EINVAL;
    for (size_t i = 0; i < N_FORMATS; i++) {
        if (strcasecmp(s, format_names[i]) == 0) {
            *out = (shelf_import_format)i;
            return 0;
        }
    }
    return SHELF_EINVAL;
}

void shelf_import_opts_init(shelf_import_opts *o, shelf_import_format format)
{
    memset(o, 0, sizeof *o);
    o->format = format;
    o->what = SHELF_IMPORT_EVENTS;
    o->event_type = "view";
}

/* ==== line reader ====================================================================== */

#define READ_BLOCK (1u << 20)

/* ---- transparent decompression: gzip (zlib) and xz (liblzma) ---------------------------- */
enum { PACK_GZIP = 1, PACK_XZ = 2 };

struct shelf__unpack {
    int kind;
    z_stream z;
    lzma_stream x;
    unsigned char in[1 << 16];
    int in_eof;
    int z_between;     /* gzip: between members (a clean end of file is fine) */
    uint64_t in_total; /* compressed bytes read */
};

/* Looks at the first bytes; sets up a decoder when they are gzip or xz. */
static int unpack_start(shelf__lines *r)
{
    unsigned char m[6];
    ssize_t n = pread(r->fd, m, sizeof m, 0);
    int kind = 0;
    if (n >= 2 && m[0] == 0x1f && m[1] == 0x8b) kind = PACK_GZIP;
    else if (n == 6 && memcmp(m, "\xFD" "7zXZ\0", 6) == 0) kind = PACK_XZ;
    if (!kind) return 0;
    struct shelf__unpack *u = calloc(1, sizeof *u);
    if (!u) return shelf_store_fail(r->st, SHELF_ENOMEM, "%s: out of memory", r->path);
    u->kind = kind;
    int ok;
    if (kind == PACK_GZIP) {
        ok = inflateInit2(&u->z, 15 + 16) == Z_OK;
    } else {
        lzma_stream init = LZMA_STREAM_INIT;
        u->x = init;
        ok = lzma_stream_decoder(&u->x, UINT64_MAX, LZMA_CONCATENATED) == LZMA_OK;
    }
    if (!ok) {
        free(u);
        return shelf_store_fail(r->st, SHELF_ENOMEM, "%s: cannot start the decompressor", r->path);
    }
    r->unpack = u;
    return 0;
}

static void unpack_end(shelf__lines *r)
{
    struct shelf__unpack *u = r->unpack;
    if (!u) return;
    if (u->kind == PACK_GZIP) inflateEnd(&u->z);
    else lzma_end(&u->x);
    free(u);
    r->unpack = NULL;
}

uint64_t shelf__lines_done(const shelf__lines *r)
{
    return r->unpack ? r->unpack->in_total : r->offset + r->beg;
}

/* Reads up to room decompressed bytes into dst: >0 bytes, 0 end, <0 error. */
static ssize_t unpack_read(shelf__lines *r, char *dst, size_t room)
{
    struct shelf__unpack *u = r->unpack;
    for (;;) {
        size_t avail = u->kind == PACK_GZIP ? u->z.avail_in : u->x.avail_in;
        if (avail == 0 && !u->in_eof) {
            ssize_t n = read(r->fd, u->in, sizeof u->in);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) return shelf_store_fail(r->st, SHELF_EIO, "%s: read failed: %s", r->path, strerror(errno));
            if (n == 0) u->in_eof = 1;
            u->in_total += (uint64_t)n;
            if (u->kind == PACK_GZIP) {
                u->z.next_in = u->in;
                u->z.avail_in = (uInt)n;
            } else {
                u->x.next_in = u->in;
                u->x.avail_in = (size_t)n;
            }
        }
        if (u->kind == PACK_GZIP) {
            u->z.next_out = (unsigned char *)dst;
            u->z.avail_out = (uInt)(room > UINT32_MAX ? UINT32_MAX : room);
            uInt before = u->z.avail_in;
            int zr = inflate(&u->z, Z_NO_FLUSH);
            size_t got = (size_t)((room > UINT32_MAX ? UINT32_MAX : room) - u->z.avail_out);
            if (u->z.avail_in != before || got) u->z_between = 0;
            if (zr == Z_STREAM_END) {
                inflateReset(&u->z); /* another gzip member may follow */
                u->z_between = 1;
            } else if (zr != Z_OK && zr != Z_BUF_ERROR) {
                return shelf_store_fail(r->st, SHELF_EFORMAT, "%s: corrupt gzip data near byte %llu", r->path,
                                        (unsigned long long)u->in_total);
            }
            if (got) return (ssize_t)got;
            if (u->in_eof && u->z.avail_in == 0) {
                if (u->z_between) return 0;
                return shelf_store_fail(r->st, SHELF_EFORMAT, "%s: truncated gzip file", r->path);
            }
        } else {
            u->x.next_out = (uint8_t *)dst;
            u->x.avail_out = room;
            lzma_ret xr = lzma_code(&u->x, u->in_eof ? LZMA_FINISH : LZMA_RUN);
            size_t got = room - u->x.avail_out;
            if (xr == LZMA_STREAM_END) return (ssize_t)got;
            if (xr != LZMA_OK && xr != LZMA_BUF_ERROR)
                return shelf_store_fail(r->st, SHELF_EFORMAT, "%s: corrupt xz data near byte %llu", r->path,
                                        (unsigned long long)u->in_total);
            if (got) return (ssize_t)got;
            if (xr == LZMA_BUF_ERROR && u->in_eof)
                return shelf_store_fail(r->st, SHELF_EFORMAT, "%s: truncated xz file", r->path);
        }
    }
}

int shelf__lines_open(shelf__lines *r, shelf_store *st, const char *path)
{
    memset(r, 0, sizeof *r);
    r->fd = -1;
    r->st = st;
    r->path = path;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        return shelf_store_fail(st, e == ENOENT ? SHELF_ENOTFOUND : SHELF_EIO, "%s: %s", path,
                                e == ENOENT ? "no such file" : strerror(e));
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return shelf_store_fail(st, SHELF_EIO, "%s: %s", path, strerror(e));
    }
    if (S_ISDIR(sb.st_mode)) {
        close(fd);
        return shelf_store_fail(st, SHELF_EIO, "%s: is a directory", path);
    }
    r->size = S_ISREG(sb.st_mode) ? (uint64_t)sb.st_size : 0;
    r->cap = READ_BLOCK + 1;
    r->buf = malloc(r->cap);
    if (!r->buf) {
        close(fd);
        return shelf_store_fail(st, SHELF_ENOMEM, "%s: out of memory", path);
    }
    r->fd = fd;
    return unpack_start(r);
}

void shelf__lines_close(shelf__lines *r)
{
    unpack_end(r);
    if (r->fd >= 0) close(r->fd);
    r->fd = -1;
    free(r->buf);
    r->buf = NULL;
}

/* Keeps buf[keep..end) (moved to the front), grows the buffer when it is
 * mostly full, and reads one more block. 1 read, 0 end of file, <0 error. */
static int fill(shelf__lines *r, size_t keep)
{
    if (keep > 0) {
        memmove(r->buf, r->buf + keep, r->end - keep);
        r->offset += keep;
        r->end -= keep;
        r->beg -= keep;
        r->rec -= keep;
    }
    if (r->cap - 1 - r->end < READ_BLOCK / 2) {
        size_t ncap = (r->cap - 1) * 2 + 1;
        if (ncap < r->cap) return shelf_store_fail(r->st, SHELF_ENOMEM, "%s: line too long", r->path);
        char *nb = realloc(r->buf, ncap);
        if (!nb) return shelf_store_fail(r->st, SHELF_ENOMEM, "%s:%llu: out of memory (line of %zu bytes)",
                                         r->path, (unsigned long long)r->line + 1, r->end);
        r->buf = nb;
        r->cap = ncap;
    }
    for (;;) {
        ssize_t n;
        if (r->unpack) {
            n = unpack_read(r, r->buf + r->end, r->cap - 1 - r->end);
            if (n < 0) return (int)n;
        } else {
            n = read(r->fd, r->buf + r->end, r->cap - 1 - r->end);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0)
                return shelf_store_fail(r->st, SHELF_EIO, "%s: read failed: %s", r->path, strerror(errno));
        }
        if (n == 0) {
            r->eof = 1;
            return 0;
        }
        r->end += (size_t)n;
        return 1;
    }
}

/* Finds the end of the line starting at `from` (the record starts at
 * r->rec), reading more as needed; cuts the terminator and moves beg past it.
 * 1 line found (possibly unterminated at end of file), 0 nothing left. */
static int cut_line(shelf__lines *r, size_t from)
{
    size_t scanned = from;
    char *nl;
    for (;;) {
        nl = memchr(r->buf + scanned, '\n', r->end - scanned);
        if (nl || r->eof) break;
        size_t keep = r->rec;
        scanned = r->end - keep;
        from -= keep;
        int rc = fill(r, keep);
        if (rc < 0) return rc;
    }
    if (!nl && from == r->end) return 0;
    size_t stop = nl ? (size_t)(nl - r->buf) : r->end;
    r->beg = nl ? stop + 1 : r->end;
    r->term = nl ? 1 : 0;
    if (stop > from && r->buf[stop - 1] == '\r') {
        stop--;
        r->term = nl ? 2 : 0;
    }
    r->buf[stop] = '\0';
    r->rec_len = stop - r->rec;
    r->line++;
    return 1;
}

int shelf__lines_next(shelf__lines *r, char **line, size_t *len)
{
    r->rec = r->beg;
    int rc = cut_line(r, r->beg);
    if (rc <= 0) return rc;
    r->rec_line = r->line;
    if (r->line == 1 && r->offset == 0 && r->rec_len >= 3 && memcmp(r->buf + r->rec, "\xEF\xBB\xBF", 3) == 0) {
        r->rec += 3;
        r->rec_len -= 3;
    }
    *line = r->buf + r->rec;
    *len = r->rec_len;
    return 1;
}

int shelf__lines_extend(shelf__lines *r, char **line, size_t *len)
{
    if (r->term == 0) return 0;
    size_t at = r->rec + r->rec_len;
    if (r->term == 2) r->buf[at++] = '\r';
    r->buf[at++] = '\n';
    int rc = cut_line(r, at);
    if (rc <= 0) { /* nothing follows: the record stays as it was */
        r->buf[r->rec + r->rec_len] = '\0';
        r->term = 0;
        return rc;
    }
    *line = r->buf + r->rec;
    *len = r->rec_len;
    return 1;
}

int shelf__read_file(shelf_store *st, const char *path, char **out, size_t *len)
{
    shelf__lines r;
    int rc = shelf__lines_open(&r, st, path);
    while (!rc && !r.eof) {
        r.rec = 0; /* keep everything */
        rc = fill(&r, 0);
        rc = rc < 0 ? rc : 0;
    }
    if (rc) {
        shelf__lines_close(&r);
        return rc;
    }
    r.buf[r.end] = '\0';
    *out = r.buf;
    *len = r.end;
    r.buf = NULL;
    shelf__lines_close(&r);
    return 0;
}

/* ==== errors ================================================================================ */

static void vfail(shelf__imp *imp, int code, int field, const char *name, const char *tail,
                  const char *fmt, va_list ap)
{
    char msg[sizeof(((shelf_err *)0)->msg)];
    size_t n = 0;
    int w;
#define PUT(...)                                                                             \
    do {                                                                                     \
        w = snprintf(msg + n, sizeof msg - n, __VA_ARGS__);                                  \
        if (w > 0) n = (size_t)w < sizeof msg - n ? n + (size_t)w : sizeof msg - 1;          \
    } while (0)
    PUT("%s", imp->path ? imp->path : "?");
    if (imp->line) PUT(":%llu", (unsigned long long)imp->line);
    PUT(": ");
    if (field > 0 && name) PUT("field %d (%s): ", field, name);
    else if (field > 0) PUT("field %d: ", field);
    else if (name) PUT("field '%s': ", name);
    w = vsnprintf(msg + n, sizeof msg - n, fmt, ap);
    if (w > 0) n = (size_t)w < sizeof msg - n ? n + (size_t)w : sizeof msg - 1;
    if (tail) PUT("%s", tail);
#undef PUT
    shelf_store_fail(imp->st, code, "%s", msg);
}

int shelf__imp_fail(shelf__imp *imp, int code, int field, const char *name, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail(imp, code, field, name, NULL, fmt, ap);
    va_end(ap);
    return code;
}

static int fail_tail(shelf__imp *imp, int code, int field, const char *name, const char *tail,
                     const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static int fail_tail(shelf__imp *imp, int code, int field, const char *name, const char *tail,
                     const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail(imp, code, field, name, tail, fmt, ap);
    va_end(ap);
    return code;
}

int shelf__imp_bad(shelf__imp *imp, int code, int field, const char *name, const char *what,
                   const char *val, size_t len)
{
    char q[200];
    size_t n = 0;
    q[n++] = ':';
    q[n++] = ' ';
    q[n++] = '\'';
    size_t show = len > 40 ? 40 : len;
    for (size_t i = 0; i < show; i++) {
        unsigned char c = (unsigned char)val[i];
        if (c >= 0x20 && c < 0x7F && c != '\\' && c != '\'') q[n++] = (char)c;
        else n += (size_t)snprintf(q + n, sizeof q - n, "\\x%02x", c);
    }
    q[n++] = '\'';
    if (show < len) n += (size_t)snprintf(q + n, sizeof q - n, "... (%zu bytes)", len);
    q[n] = '\0';
    return fail_tail(imp, code, field, name, q, "%s", what);
}

int shelf__imp_store_fail(shelf__imp *imp, int rc)
{
    char saved[sizeof(((shelf_err *)0)->msg)];
    snprintf(saved, sizeof saved, "%s", shelf_store_errmsg(imp->st));
    return shelf__imp_fail(imp, rc, 0, NULL, "%s", saved);
}

int shelf__imp_utf8(shelf__imp *imp, const char *rec, size_t len, shelf__field_of_fn field_of,
                    const void *ctx)
{
    size_t at;
    int fault = shelf__check_text(rec, len, &at);
    if (fault == SHELF__TEXT_OK) return 0;
    const char *name = NULL;
    int field = field_of ? field_of(ctx, rec, at, &name) : 0;
    if (fault == SHELF__TEXT_NUL)
        return shelf__imp_fail(imp, SHELF_EFORMAT, field, name, "NUL byte at byte column %zu", at + 1);
    return shelf__imp_fail(imp, SHELF_EFORMAT, field, name, "invalid UTF-8 at byte column %zu (0x%02x)", at + 1,
                           (unsigned)(unsigned char)rec[at]);
}

int shelf__imp_value(shelf__imp *imp, double v, int field, const char *name, float *out)
{
    char why[96];
    int rc = shelf__check_float(v, out, why, sizeof why);
    return rc ? shelf__imp_fail(imp, rc, field, name, "%s", why) : 0;
}

int shelf__imp_json_texts(shelf__imp *imp, const cJSON *j, int field, const char *name)
{
    char path[160], why[120];
    if (!shelf__check_json(j, path, sizeof path, why, sizeof why)) return 0;
    if (field > 0 || name) /* the field holds the JSON: the path is below it */
        return shelf__imp_fail(imp, SHELF_EFORMAT, field, name, "%s%s%s", path, path[0] ? ": " : "", why);
    return shelf__imp_fail(imp, SHELF_EFORMAT, 0, path[0] ? path + (path[0] == '.') : NULL, "%s", why);
}

/* ==== context helpers ============================================================================ */

/* ---- duplicate events ----------------------------------------------------------------
 * An event's key packs user and item into one word and ts (48 bits, signed)
 * with the type into the other; events without a timestamp, or with one
 * beyond 48 bits, have no key and are always stored. The all-zero key
 * (ts 0) is never inserted, so it marks an empty slot. */
struct shelf__evkey {
    uint64_t ui, tt;
};

static int event_key(const shelf_event *e, struct shelf__evkey *k)
{
    if (e->ts == 0 || e->ts >= (INT64_C(1) << 47) || e->ts < -(INT64_C(1) << 47) || e->type > 0xffff) return 0;
    k->ui = (uint64_t)e->user << 32 | e->item;
    k->tt = (uint64_t)e->ts << 16 | e->type;
    return 1;
}

static size_t key_slot(const struct shelf__evkey *k, size_t mask)
{
    uint64_t h = k->ui * 0x9E3779B97F4A7C15u ^ (k->tt + 0x632BE59BD9B4E019u) * 0xC2B2AE3D27D4EB4Fu;
    h ^= h >> 29;
    h *= 0xBF58476D1CE4E5B9u;
    return (size_t)(h ^ h >> 32) & mask;
}

/* Inserts k, whose home is slot i: 1 when new, 0 when it was there. The
 * table has room. */
static int key_insert_at(struct shelf__evkey *t, size_t mask, const struct shelf__evkey *k, size_t i)
{
    for (;; i = (i + 1) & mask) {
        if (t[i].ui == k->ui && t[i].tt == k->tt) return 0;
        if (t[i].ui == 0 && t[i].tt == 0) {
            t[i] = *k;
            return 1;
        }
    }
}

static int key_insert(struct shelf__evkey *t, size_t mask, const struct shelf__evkey *k)
{
    return key_insert_at(t, mask, k, key_slot(k, mask));
}

static int seen_grow(shelf__imp *imp, size_t need)
{
    if (need * 2 <= imp->seen_cap) return 0;
    size_t cap = imp->seen_cap ? imp->seen_cap : 1u << 14;
    while (need * 2 > cap) cap *= 2;
    struct shelf__evkey *t = calloc(cap + SHELF__BATCH, sizeof *t); /* + room for a batch's keys */
    if (!imp->seen_home && !(imp->seen_home = malloc(SHELF__BATCH * sizeof *imp->seen_home))) {
        free(t);
        t = NULL;
    }
    if (!t) return shelf__imp_fail(imp, SHELF_ENOMEM, 0, NULL, "out of memory (keys of %zu events)", need);
    for (size_t i = 0; i < imp->seen_cap; i++)
        if (imp->seen[i].ui || imp->seen[i].tt) key_insert(t, cap - 1, &imp->seen[i]);
    free(imp->seen);
    imp->seen = t;
    imp->seen_cap = cap;
    return 0;
}

static int seen_add_stored(void *ctx, uint64_t id, const shelf_event *ev)
{
    (void)id;
    shelf__imp *imp = ctx;
    struct shelf__evkey k;
    if (!event_key(ev, &k)) return 0;
    if (seen_grow(imp, imp->n_seen + 1)) return SHELF_ENOMEM;
    imp->n_seen += key_insert(imp->seen, imp->seen_cap - 1, &k);
    return 0;
}

/* Drops the batch's events whose key is stored or came before, counting them. */
static int drop_duplicates(shelf__imp *imp)
{
    if (!imp->seen_cap) { /* first batch: the keys of the events stored before this import */
        if (seen_grow(imp, SHELF__BATCH)) return SHELF_ENOMEM;
        uint64_t line = imp->line;
        imp->line = 0;
        int rc = shelf_store_foreach_event(imp->st, 0, seen_add_stored, imp);
        imp->line = line;
        if (rc == SHELF_ENOMEM) return rc;
        if (rc) return shelf__imp_store_fail(imp, rc);
    }
    if (seen_grow(imp, imp->n_seen + imp->n_batch)) return SHELF_ENOMEM;
    /* the batch's home slots first, fetched ahead: the table is far larger
     * than the caches, and one miss per event would cost more than the rest */
    size_t kept = 0, mask = imp->seen_cap - 1, *home = imp->seen_home;
    struct shelf__evkey *keys = imp->seen + imp->seen_cap; /* the batch's, after the table */
    for (size_t i = 0; i < imp->n_batch; i++) {
        home[i] = event_key(&imp->batch[i], &keys[i]) ? key_slot(&keys[i], mask) : SIZE_MAX;
        if (home[i] != SIZE_MAX) __builtin_prefetch(&imp->seen[home[i]], 1);
    }
    for (size_t i = 0; i < imp->n_batch; i++) {
        if (home[i] != SIZE_MAX) {
            if (!key_insert_at(imp->seen, mask, &keys[i], home[i])) {
                if (!imp->res.n_duplicates++) imp->res.first_duplicate = imp->batch_line[i];
                continue;
            }
            imp->n_seen++;
        }
        imp->batch[kept++] = imp->batch[i];
    }
    imp->n_batch = kept;
    return 0;
}

int shelf__imp_flush(shelf__imp *imp)
{
    if (imp->n_batch == 0) return 0;
    int rc = imp->o->allow_duplicates ? 0 : drop_duplicates(imp);
    if (rc) return rc;
    rc = imp->n_batch ? shelf_store_add_events(imp->st, imp->batch, imp->n_batch) : 0;
    if (rc) return shelf__imp_store_fail(imp, rc);
    imp->res.n_events += imp->n_batch;
    imp->n_batch = 0;
    if (imp->arena) shelf_arena_reset(imp->arena);
    if (imp->prog && imp->rd) shelf_progress_update(imp->prog, shelf__lines_done(imp->rd), NULL);
    return 0;
}

const char *shelf__imp_keep(shelf__imp *imp, const char *s, size_t len)
{
    if (!imp->arena && !(imp->arena = shelf_arena_new(0))) return NULL;
    return shelf_arena_strndup(imp->arena, s, len);
}

void shelf__imp_tick(shelf__imp *imp)
{
    if ((++imp->res.n_lines & 1023) == 0 && imp->prog && imp->rd)
        shelf_progress_update(imp->prog, shelf__lines_done(imp->rd), NULL);
}

char *shelf__imp_scratch(shelf__imp *imp, size_t n)
{
    if (n > imp->scratch_cap) {
        size_t cap = imp->scratch_cap ? imp->scratch_cap : 256;
        while (cap < n) cap *= 2;
        char *p = realloc(imp->scratch, cap);
        if (!p) return NULL;
        imp->scratch = p;
        imp->scratch_cap = cap;
    }
    return imp->scratch;
}

int shelf__imp_type(shelf__imp *imp, const char *name, size_t len, int field, const char *fname,
                    uint32_t *id)
{
    for (unsigned i = 0; i < imp->n_tmap; i++)
        if (imp->tmap[i].len == len && memcmp(imp->tmap[i].name, name, len) == 0) {
            *id = imp->tmap[i].id;
            return 0;
        }
    for (unsigned i = 0; i < imp->n_tcache; i++) {
        if (imp->tcache[i].len == len && memcmp(imp->tcache[i].name, name, len) == 0) {
            *id = imp->tcache[i].id;
            return 0;
        }
    }
    if (len == 0) return shelf__imp_fail(imp, SHELF_EFORMAT, field, fname, "empty event type");
    char small[256], *buf = len < sizeof small ? small : malloc(len + 1);
    if (!buf) return shelf__imp_fail(imp, SHELF_ENOMEM, field, fname, "out of memory");
    memcpy(buf, name, len);
    buf[len] = '\0';
    uint32_t t;
    int found = !memchr(name, '\0', len) && shelf_store_event_type(imp->st, buf, &t, NULL) == 0;
    if (buf != small) free(buf);
    if (!found)
        return shelf__imp_bad(imp, SHELF_ENOTFOUND, field, fname,
                              "unknown event type (map it: --type-map NAME=TYPE, or NAME=- to drop such rows)", name,
                              len);
    *id = t;
    if (len >= sizeof imp->tcache[0].name) return 0; /* too long to remember */
    unsigned slot = imp->n_tcache < SHELF__TCACHE ? imp->n_tcache++ : imp->tcache_next++ % SHELF__TCACHE;
    memcpy(imp->tcache[slot].name, name, len);
    imp->tcache[slot].name[len] = '\0';
    imp->tcache[slot].len = len;
    imp->tcache[slot].id = t;
    return 0;
}

int shelf__imp_default_type(shelf__imp *imp, uint32_t *id)
{
    const char *name = imp->o->event_type ? imp->o->event_type : "view";
    if (shelf_store_event_type(imp->st, name, id, NULL) != 0)
        return shelf_store_fail(imp->st, SHELF_ENOTFOUND, "%s: event type '%s' (option event_type) is not in the store",
                                imp->path, name);
    return 0;
}

int shelf__imp_user(shelf__imp *imp, const char *ext, size_t len, uint32_t *idx)
{
    if (imp->has_last_user && imp->last_user_len == len && memcmp(imp->last_user, ext, len) == 0) {
        *idx = imp->last_user_idx;
        return 0;
    }
    int rc = shelf_store_user_idx(imp->st, ext, len, 1, idx, NULL);
    if (rc) return shelf__imp_store_fail(imp, rc);
    if (len > imp->last_user_cap) {
        size_t cap = len < 64 ? 64 : len;
        char *p = realloc(imp->last_user, cap);
        if (!p) {
            imp->has_last_user = 0;
            return 0; /* the cache is only an optimisation */
        }
        imp->last_user = p;
        imp->last_user_cap = cap;
    }
    if (len) memcpy(imp->last_user, ext, len);
    imp->last_user_len = len;
    imp->last_user_idx = *idx;
    imp->has_last_user = 1;
    return 0;
}

int shelf__imp_open(shelf__imp *imp, shelf__lines *r, const char *path)
{
    imp->path = path;
    imp->line = 0;
    imp->has_last_user = 0;
    int rc = shelf__lines_open(r, imp->st, path);
    if (rc) return rc;
    imp->rd = r;
    if (imp->o->progress) {
        const char *base = strrchr(path, '/');
        char label[96];
        snprintf(label, sizeof label, "import %s", base ? base + 1 : path);
        imp->prog = shelf_progress_new(label, r->size, 1);
        shelf_progress_set_unit(imp->prog, "B");
    }
    return 0;
}

int shelf__imp_nonempty(shelf__imp *imp, int rc, uint64_t n_records)
{
    if (rc || n_records) return rc;
    imp->line = 0;
    return shelf__imp_fail(imp, SHELF_EFORMAT, 0, NULL, "empty file");
}

void shelf__imp_close(shelf__imp *imp, shelf__lines *r)
{
    if (imp->prog) {
        shelf_progress_update(imp->prog, shelf__lines_done(r), NULL);
        shelf_progress_finish(imp->prog);
        imp->prog = NULL;
    }
    imp->rd = NULL;
    shelf__lines_close(r);
}

/* ==== field mapping ============================================================================= */

static const char *const event_fields[] = {"user", "item", "type", "value", "ts", "rec_id", "context"};
static const char *const item_fields[] = {"id",    "kind",  "title",     "text",   "category",
                                          "brand", "price", "available", "created"};
static const char *const user_fields[] = {"id", "created"};

int shelf__fieldmap_init(shelf__imp *imp, shelf__fieldmap *m)
{
    memset(m, 0, sizeof *m);
    const char *what = imp->o->what == SHELF_IMPORT_ITEMS ? "items" : imp->o->what == SHELF_IMPORT_USERS ? "users" : "events";
    switch (imp->o->what) {
    case SHELF_IMPORT_ITEMS: m->names = item_fields, m->n = SHELF__IT_N; break;
    case SHELF_IMPORT_USERS: m->names = user_fields, m->n = SHELF__US_N; break;
    default: m->names = event_fields, m->n = SHELF__EV_N; break;
    }
    for (size_t f = 0; f < m->n; f++) m->key[f] = m->names[f];
    if (!imp->o->mapping || !imp->o->mapping[0]) return 0;
    if (!(m->text = strdup(imp->o->mapping))) return shelf_store_fail(imp->st, SHELF_ENOMEM, "out of memory");
    char *save = NULL;
    for (char *ent = strtok_r(m->text, ",", &save); ent; ent = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(ent, '=');
        char *f = ent, *col = eq ? eq + 1 : NULL;
        if (eq) *eq = '\0';
        /* trim spaces around both names */
        while (*f == ' ') f++;
        for (char *t = f + strlen(f); t > f && t[-1] == ' ';) *--t = '\0';
        if (col) {
            while (*col == ' ') col++;
            for (char *t = col + strlen(col); t > col && t[-1] == ' ';) *--t = '\0';
        }
        if (!col || !*col || !*f)
            return shelf_store_fail(imp->st, SHELF_EINVAL, "mapping '%s': expected field=column", imp->o->mapping);
        size_t k = 0;
        while (k < m->n && strcmp(m->names[k], f) != 0) k++;
        if (k == m->n) {
            char list[160] = "";
            for (size_t j = 0; j < m->n; j++)
                snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", j ? ", " : "", m->names[j]);
            return shelf_store_fail(imp->st, SHELF_EINVAL, "mapping: unknown field '%s' for %s (fields: %s)", f,
                                    what, list);
        }
        if (m->mapped[k])
            return shelf_store_fail(imp->st, SHELF_EINVAL, "mapping: field '%s' given twice", f);
        m->key[k] = col;
        m->mapped[k] = 1;
    }
    return 0;
}

void shelf__fieldmap_free(shelf__fieldmap *m)
{
    free(m->text);
    m->text = NULL;
}

const char *shelf__imp_category(shelf__imp *imp, const char *cat)
{
    char sep = imp->o->category_separator;
    if (!cat || !sep || !strchr(cat, sep)) return cat;
    shelf__sbuf *b = &imp->cat;
    b->len = 0;
    for (const char *p = cat;;) {
        const char *end = strchr(p, sep);
        size_t n = end ? (size_t)(end - p) : strlen(p);
        while (n && (*p == ' ' || *p == '\t')) p++, n--;
        while (n && (p[n - 1] == ' ' || p[n - 1] == '\t')) n--;
        if (n) {
            if (b->len) shelf__sbuf_put(b, " > ", 3);
            shelf__sbuf_put(b, p, n);
        }
        if (!end) break;
        p = end + 1;
    }
    return b->oom || !b->len ? cat : b->p;
}

int shelf__imp_skip_id(shelf__imp *imp, const char *id, size_t len, int user)
{
    static const char *const nulls[] = {"na", "n/a", "nan", "null", "none", "nil"};
    int why = -1;
    if (!id || !len) why = user ? SHELF_SKIP_USER_EMPTY : SHELF_SKIP_ITEM_EMPTY;
    else if (len > 4 || (id[0] | 0x20) != 'n') return 0; /* the common case, at once */
    for (size_t k = 0; why < 0 && k < sizeof nulls / sizeof nulls[0]; k++)
        if (strlen(nulls[k]) == len && !strncasecmp(nulls[k], id, len)) why = user ? SHELF_SKIP_USER_NULL : SHELF_SKIP_ITEM_NULL;
    if (why < 0) return 0;
    if (!imp->res.n_skipped[why]++) imp->res.first_skipped[why] = imp->line;
    return 1;
}

/* ==== driver =================================================================================== */

/* opts->type_map into imp->tmap: "from=to,...", to an event type of the
 * store or "-" (dropped); errors name the entry */
static int parse_type_map(shelf__imp *imp, const char *map)
{
    for (const char *p = map; p && *p;) {
        const char *end = strchr(p, ','), *eq = memchr(p, '=', end ? (size_t)(end - p) : strlen(p));
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (!eq || eq == p || (size_t)(eq - p) >= sizeof imp->tmap[0].name || eq + 1 == p + len)
            return shelf_store_fail(imp->st, SHELF_EINVAL,
                                    "type map: '%.*s': expected FILE_TYPE=STORE_TYPE (or =- to drop the rows), the "
                                    "file's name under 32 bytes", (int)len, p);
        if (imp->n_tmap == SHELF__TMAP)
            return shelf_store_fail(imp->st, SHELF_EINVAL, "type map: more than %d entries", SHELF__TMAP);
        size_t nl = (size_t)(eq - p), tl = len - nl - 1;
        uint32_t t = SHELF__IMP_DROP;
        if (!(tl == 1 && eq[1] == '-')) {
            char to[64];
            snprintf(to, sizeof to, "%.*s", (int)(tl < sizeof to - 1 ? tl : sizeof to - 1), eq + 1);
            if (shelf_store_event_type(imp->st, to, &t, NULL) != 0) {
                char known[256] = "";
                for (uint32_t k = 0; k < shelf_store_n_event_types(imp->st); k++)
                    snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s", k ? ", " : "",
                             shelf_store_event_type_name(imp->st, k));
                return shelf_store_fail(imp->st, SHELF_EINVAL, "type map: '%.*s': the store has no event type '%s' "
                                        "(it has %s; '-' drops the rows)", (int)len, p, to, known);
            }
        }
        memcpy(imp->tmap[imp->n_tmap].name, p, nl);
        imp->tmap[imp->n_tmap].name[nl] = '\0';
        imp->tmap[imp->n_tmap].len = nl;
        imp->tmap[imp->n_tmap++].id = t;
        p = end ? end + 1 : p + len;
    }
    return 0;
}

/* opts->event_types "wishlist=2,compare=0.5": types the store lacks are
 * added with their weights (inside the import's transaction); one it has
 * must have that weight already. */
static int add_event_types(shelf__imp *imp, const char *spec)
{
    for (const char *p = spec; p && *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        size_t nl = eq ? (size_t)(eq - p) : 0;
        char name[32];
        double w;
        if (!eq || nl == 0 || nl >= sizeof name || memchr(p, ' ', nl) ||
            shelf__parse_f64(eq + 1, len - nl - 1, &w) || fabs(w) > 1e6)
            return shelf_store_fail(imp->st, SHELF_EINVAL,
                                    "event types: '%.*s': expected NAME=WEIGHT (a name under 32 bytes without spaces, "
                                    "a weight between -1e6 and 1e6)", (int)len, p);
        memcpy(name, p, nl);
        name[nl] = '\0';
        float have;
        if (shelf_store_event_type(imp->st, name, NULL, &have) == 0) {
            if (have != (float)w)
                return shelf_store_fail(imp->st, SHELF_EINVAL,
                                        "event types: '%s' exists with weight %g, not %g (a type's weight stays what "
                                        "it was: the events stored were weighed by it)", name, (double)have, w);
        } else {
            int rc = shelf_store_add_event_type(imp->st, name, (float)w, NULL);
            if (rc) return rc;
            imp->res.n_new_types++;
        }
        p = end ? end + 1 : p + len;
    }
    return 0;
}

/* SHA-256 of the file's bytes as they are (packed files too) and their
 * count: 0, 1 when path is no regular file (a folder: nothing to compare),
 * or a negative code with the store's message set. */
static int file_sha256(shelf_store *st, const char *path, unsigned char sha[32], uint64_t *bytes)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 1; /* the importer names what is wrong with it */
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return 1;
    }
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    enum { BLOCK = 1 << 20 };
    char *buf = malloc(BLOCK);
    int rc = md && buf && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 ? 0 : SHELF_ENOMEM;
    *bytes = 0;
    while (!rc) {
        ssize_t n = read(fd, buf, BLOCK);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) rc = SHELF_EIO;
        else if (n == 0) break;
        else if (EVP_DigestUpdate(md, buf, (size_t)n) != 1) rc = SHELF_ENOMEM;
        else *bytes += (uint64_t)n;
    }
    unsigned n = 0;
    if (!rc && (EVP_DigestFinal_ex(md, sha, &n) != 1 || n != 32)) rc = SHELF_ENOMEM;
    int err = errno;
    EVP_MD_CTX_free(md);
    free(buf);
    close(fd);
    if (rc == SHELF_EIO) return shelf_store_fail(st, rc, "%s: cannot read: %s", path, strerror(err));
    if (rc) return shelf_store_fail(st, rc, "%s: out of memory (hashing the file)", path);
    return 0;
}

int shelf_import_file(shelf_store *st, const char *path, const shelf_import_opts *o, shelf_import_result *res)
{
    if (!st) return SHELF_EINVAL;
    if (!path || !o) return shelf_store_fail(st, SHELF_EINVAL, "import: no %s", path ? "options" : "path");
    if ((unsigned)o->format >= N_FORMATS)
        return shelf_store_fail(st, SHELF_EINVAL, "import: unknown format %d", (int)o->format);
    if ((unsigned)o->what > SHELF_IMPORT_USERS)
        return shelf_store_fail(st, SHELF_EINVAL, "import: unknown record kind %d", (int)o->what);
    double t0 = shelf_now();
    shelf__imp imp;
    memset(&imp, 0, sizeof imp);
    imp.st = st;
    imp.o = o;
    imp.path = path;
    char d = o->delimiter;
    if (o->format == SHELF_FMT_CSV && (d == '"' || d == '\n' || d == '\r'))
        return shelf_store_fail(st, SHELF_EINVAL, "%s: invalid CSV delimiter", path);
    imp.batch = malloc(SHELF__BATCH * sizeof *imp.batch);
    imp.batch_line = malloc(SHELF__BATCH * sizeof *imp.batch_line);
    if (!imp.batch || !imp.batch_line) {
        free(imp.batch);
        free(imp.batch_line);
        return shelf_store_fail(st, SHELF_ENOMEM, "%s: out of memory", path);
    }
    int rc = shelf_store_begin(st);
    if (rc) {
        free(imp.batch);
        free(imp.batch_line);
        return rc;
    }
    /* the types the options add, then the map onto the store's types */
    if (o->event_types) rc = add_event_types(&imp, o->event_types);
    if (!rc && parse_type_map(&imp, o->type_map)) rc = SHELF_EINVAL;
    /* a file of events imported before is not read again (checked inside the
     * transaction: two imports of one file at once store it once) */
    unsigned char sha[32];
    uint64_t bytes = 0;
    int hashed = 0, already = 0;
    if (!rc && !o->allow_duplicates && o->what == SHELF_IMPORT_EVENTS) {
        int hr = file_sha256(st, path, sha, &bytes);
        hashed = hr == 0;
        if (hashed) hr = shelf__store_import_find(st, sha, &imp.res.imported_at, &imp.res.imported_events);
        if (hr < 0 && hr != SHELF_ENOTFOUND) rc = hr;
        else if (hashed && hr == 0) already = imp.res.already_imported = 1;
    }
    if (already && !rc) {
        imp.res.n_new_types = 0; /* rolled back with the rest */
        rc = shelf_store_rollback(st);
    }
    uint32_t users0 = shelf_store_n_users(st), items0 = shelf_store_n_items(st);
    if (!rc && !already) switch (o->format) {
    case SHELF_FMT_S3REC: rc = shelf__import_s3rec(&imp, path); break;
    case SHELF_FMT_PAIRS: rc = shelf__import_pairs(&imp, path); break;
    case SHELF_FMT_CSV: rc = shelf__import_csv(&imp, path); break;
    case SHELF_FMT_JSONL: rc = shelf__import_jsonl(&imp, path); break;
    case SHELF_FMT_ML100K: rc = shelf__import_ml100k(&imp, path); break;
    case SHELF_FMT_TAOBAO: rc = shelf__import_taobao(&imp, path); break;
    }
    if (!rc && !already) rc = shelf__imp_flush(&imp);
    if (!rc && !already) {
        imp.res.n_new_users = shelf_store_n_users(st) - users0;
        imp.res.n_new_items = shelf_store_n_items(st) - items0;
        if (hashed) rc = shelf__store_import_record(st, sha, path, bytes, imp.res.n_events);
        if (!rc) rc = shelf_store_commit(st);
    }
    if (rc) {
        /* keep the message naming the record across the rollback */
        char saved[sizeof(((shelf_err *)0)->msg)];
        snprintf(saved, sizeof saved, "%s", shelf_store_errmsg(st));
        shelf_store_rollback(st);
        shelf_store_fail(st, rc, "%s", saved);
    }
    if (imp.prog) shelf_progress_finish(imp.prog);
    shelf_arena_free(imp.arena);
    free(imp.batch);
    free(imp.batch_line);
    free(imp.seen);
    free(imp.seen_home);
    free(imp.last_user);
    free(imp.scratch);
    shelf__sbuf_free(&imp.cat);
    if (!rc && res) {
        imp.res.seconds = shelf_now() - t0;
        *res = imp.res;
    }
    return rc;
}

/* ==== parsers ==================================================================================== */

static void trim(const char **s, size_t *n)
{
    while (*n && (**s == ' ' || **s == '\t')) (*s)++, (*n)--;
    while (*n && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t')) (*n)--;
}

int shelf__parse_i64(const char *s, size_t n, int64_t *out)
{
    trim(&s, &n);
    int neg = 0;
    if (n && (*s == '-' || *s == '+')) {
        neg = *s == '-';
        s++, n--;
    }
    if (n == 0) return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned d = (unsigned)(unsigned char)s[i] - '0';
        if (d > 9) return -1;
        if (v > (UINT64_C(9223372036854775808) - d) / 10) return -1;
        v = v * 10 + d;
    }
    if (!neg && v > INT64_MAX) return -1;
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return 0;
}

static const double pow10_exact[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                     1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                     1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

int shelf__parse_f64(const char *s, size_t n, double *out)
{
    trim(&s, &n);
    const char *p = s, *e = s + n;
    int neg = 0;
    if (p < e && (*p == '-' || *p == '+')) neg = *p++ == '-';
    uint64_t m = 0;
    int ndig = 0, sig = 0, exp10 = 0, digits = 0;
    for (; p < e && (unsigned)(*p - '0') <= 9; p++, digits++) {
        if (m < UINT64_C(1) << 53 && sig < 17) {
            m = m * 10 + (unsigned)(*p - '0');
            if (m) sig++;
        } else {
            exp10++;
            ndig = 1; /* lost digits: not exact */
        }
    }
    if (p < e && *p == '.') {
        p++;
        for (; p < e && (unsigned)(*p - '0') <= 9; p++, digits++) {
            if (m < UINT64_C(1) << 53 && sig < 17) {
                m = m * 10 + (unsigned)(*p - '0');
                if (m) sig++;
                exp10--;
            } else if (*p != '0') {
                ndig = 1;
            }
        }
    }
    if (digits == 0) return -1;
    if (p < e && (*p == 'e' || *p == 'E')) {
        p++;
        int eneg = 0;
        if (p < e && (*p == '-' || *p == '+')) eneg = *p++ == '-';
        if (p == e) return -1;
        int ev = 0;
        for (; p < e && (unsigned)(*p - '0') <= 9; p++)
            if (ev < 100000) ev = ev * 10 + (*p - '0');
        exp10 += eneg ? -ev : ev;
    }
    if (p != e) return -1;
    double v;
    if (!ndig && m < UINT64_C(1) << 53 && exp10 >= -22 && exp10 <= 22) {
        v = (double)m; /* exact; one correctly rounded operation follows */
        v = exp10 < 0 ? v / pow10_exact[-exp10] : v * pow10_exact[exp10];
    } else {
        /* rare: many digits or a large exponent; strtod on a copy in the "C" form */
        char tmp[400];
        if (n >= sizeof tmp) return -1;
        memcpy(tmp, s, n);
        tmp[n] = '\0';
        char *end;
        v = strtod(tmp, &end);
        if (*end) return -1; /* a locale with another decimal point */
        neg = 0;
    }
    if (neg) v = -v;
    if (!isfinite(v)) return -1;
    *out = v;
    return 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant). */
/* 1 when p[0..k) are k digits (strptime alone would take fewer, or spaces) */
static int digits(const char *p, const char *e, int k)
{
    if (e - p < k) return 0;
    for (int i = 0; i < k; i++)
        if ((unsigned)(p[i] - '0') > 9) return 0;
    return 1;
}

/* ISO 8601 "YYYY-MM-DD[(T| )HH:MM[:SS[(.|,)fff]]][Z| UTC|(+|-)HH[[:]MM]]":
 * strptime reads the fields (after a check of their shape: strptime takes
 * one-digit months and leading spaces), timegm makes them unix seconds. */
static int parse_iso8601(const char *s, size_t n, int64_t *out)
{
    char buf[64];
    if (n >= sizeof buf) return -1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    const char *e = buf + n;
    if (!digits(buf, e, 4) || buf[4] != '-' || !digits(buf + 5, e, 2) || buf[7] != '-' || !digits(buf + 8, e, 2))
        return -1;
    /* one strptime call for the date and the time its shape shows */
    int has_time = n >= 16 && (buf[10] == 'T' || buf[10] == ' ') && digits(buf + 11, e, 2) && buf[13] == ':' &&
                   digits(buf + 14, e, 2);
    int has_sec = has_time && n >= 19 && buf[16] == ':';
    if (has_sec && !digits(buf + 17, e, 2)) return -1;
    char fmt[24] = "%Y-%m-%d";
    if (has_time) strcat(fmt, buf[10] == 'T' ? "T%H:%M" : " %H:%M");
    if (has_sec) strcat(fmt, ":%S");
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *p = strptime(buf, fmt, &tm);
    if (p != buf + (has_sec ? 19 : has_time ? 16 : 10)) return -1;
    int y = tm.tm_year, mo = tm.tm_mon, d = tm.tm_mday;
    if (has_sec && p < e && (*p == '.' || *p == ',')) { /* a fraction of a second, dropped */
        if (!digits(++p, e, 1)) return -1;
        while (p < e && (unsigned)(*p - '0') <= 9) p++;
    }
    if (!has_time && p < e && *p != 'Z') return -1; /* a date alone takes only Z after it */
    if (tm.tm_sec > 60) return -1;
    long off = 0;
    if (p < e && *p == 'Z') {
        p++;
    } else if (strcmp(p, " UTC") == 0 || strcmp(p, "UTC") == 0) {
        p = e; /* "... UTC" (as in the REES46 dumps) */
    } else if (p < e && (*p == '+' || *p == '-') && p > buf + 10) {
        /* %z takes +HH, +HHMM and +HH:MM */
        if (!digits(p + 1, e, 2) || (p + 3 < e && !digits(p + 3 + (p[3] == ':'), e, 2))) return -1;
        const char *q = strptime(p, "%z", &tm);
        if (!q) return -1;
        off = tm.tm_gmtoff;
        if (off > 23 * 3600 + 59 * 60 || off < -(23 * 3600 + 59 * 60)) return -1;
        p = q;
    }
    if (p != e) return -1;
    /* timegm normalises 2026-02-30 to March: such a date is refused. Events
     * come in runs of one day: the last day's answer is kept (per thread) */
    static _Thread_local struct { int y, mo, d; time_t t; } last = {-10000, 0, 0, 0};
    time_t t = last.t;
    if (y != last.y || mo != last.mo || d != last.d) {
        struct tm day = {.tm_year = y, .tm_mon = mo, .tm_mday = d}, back;
        t = timegm(&day);
        if (t == (time_t)-1 || !gmtime_r(&t, &back) || back.tm_year != y || back.tm_mon != mo || back.tm_mday != d)
            return -1;
        last.y = y, last.mo = mo, last.d = d, last.t = t;
    }
    *out = (int64_t)t + tm.tm_hour * 3600 + tm.tm_min * 60 + tm.tm_sec - off;
    return 0;
}

int shelf__parse_ts(const char *s, size_t n, int64_t *out)
{
    trim(&s, &n);
    const char *e = s + n;
    if (n >= 10 && s[4] == '-') return parse_iso8601(s, n, out);
    /* unix seconds, an optional fraction ignored */
    const char *dot = memchr(s, '.', n);
    if (dot) {
        const char *q = dot + 1;
        if (q == e) return -1;
        for (; q < e; q++)
            if ((unsigned)(*q - '0') > 9) return -1;
        n = (size_t)(dot - s);
    }
    return shelf__parse_i64(s, n, out);
}

int shelf__parse_id(const char *s, size_t n, const char **canon, size_t *clen)
{
    if (n == 0) return -1;
    for (size_t i = 0; i < n; i++)
        if ((unsigned)(s[i] - '0') > 9) return -1;
    while (n > 1 && *s == '0') s++, n--;
    *canon = s;
    *clen = n;
    return 0;
}

int shelf__parse_bool(const char *s, size_t n, int *out)
{
    trim(&s, &n);
    static const char *const yes[] = {"1", "true", "yes", "y", "t"};
    static const char *const no[] = {"0", "false", "no", "n", "f"};
    for (size_t i = 0; i < sizeof yes / sizeof *yes; i++) {
        if (strlen(yes[i]) == n && strncasecmp(s, yes[i], n) == 0) return *out = 1, 0;
        if (strlen(no[i]) == n && strncasecmp(s, no[i], n) == 0) return *out = 0, 0;
    }
    return -1;
}

