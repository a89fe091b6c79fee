/* core.h: status codes and error messages, logging, arena, seeded RNG, a
 * string->index map and a progress bar. The bottom room: uses nothing else. */
#ifndef SHELF_CORE_H
#define SHELF_CORE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SHELF_VERSION "0.1.0" /* keep equal to project(VERSION) in CMakeLists.txt */

/* Marks the functions of the public ABI: the library is built with hidden
 * visibility, so libshelf.so exports these and nothing else. */
#if defined(__GNUC__) || defined(__clang__)
#define SHELF_API __attribute__((visibility("default")))
#else
#define SHELF_API
#endif

/* ---- status codes: 0 or negative ---------------------------------------- */
enum {
    SHELF_OK = 0,
    SHELF_ENOMEM = -1,    /* out of memory */
    SHELF_EIO = -2,       /* file or system I/O failed */
    SHELF_EINVAL = -3,    /* invalid argument or option */
    SHELF_ECORRUPT = -4,  /* file fails its magic, version or checksum */
    SHELF_ESTORE = -5,    /* the SQLite store failed */
    SHELF_ENOTFOUND = -6, /* no such id, file or name */
    SHELF_EFORMAT = -7,   /* input record is malformed */
    SHELF_ERANGE = -8,    /* value out of bounds */
    SHELF_EEXIST = -9,    /* already exists */
    SHELF_EVERSION = -10, /* unsupported format or schema version */
};

/* Text of a status code ("out of memory"...); never NULL; static storage. */
SHELF_API const char *shelf_strerror(int code);

/* An error slot: the code and a human-readable message naming the place
 * (file, line, field) that was wrong. Handles embed one; functions without a
 * handle take a `shelf_err *` that may be NULL. */
typedef struct shelf_err {
    int code;
    char msg[1024];
} shelf_err;

/* Records code and printf-style message in err (if not NULL); returns code so
 * that callers can `return shelf_err_set(err, SHELF_EINVAL, "...")`. */
SHELF_API int shelf_err_set(shelf_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Message of err: "" when err is NULL or holds no error. */
SHELF_API const char *shelf_errmsg(const shelf_err *err);
SHELF_API void shelf_err_clear(shelf_err *err);

/* ---- logging: to stderr, plain or JSON lines ---------------------------- */
typedef enum {
    SHELF_LOG_DEBUG = 0,
    SHELF_LOG_INFO = 1,
    SHELF_LOG_WARN = 2,
    SHELF_LOG_ERROR = 3,
    SHELF_LOG_OFF = 4
} shelf_log_level;

/* Process-wide settings; set them before starting threads. */
SHELF_API void shelf_log_set_level(shelf_log_level level);
SHELF_API shelf_log_level shelf_log_get_level(void);
SHELF_API void shelf_log_set_json(int json);
/* Parses "debug|info|warn|error|off"; returns SHELF_EINVAL on anything else. */
SHELF_API int shelf_log_level_parse(const char *s, shelf_log_level *out);
/* One line: plain "2026-11-28T13:00:00Z info  message" or a JSON object with
 * ts, level, msg. Thread safe (one write per line). */
SHELF_API void shelf_log(shelf_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define shelf_debug(...) shelf_log(SHELF_LOG_DEBUG, __VA_ARGS__)
#define shelf_info(...) shelf_log(SHELF_LOG_INFO, __VA_ARGS__)
#define shelf_warn(...) shelf_log(SHELF_LOG_WARN, __VA_ARGS__)
#define shelf_error(...) shelf_log(SHELF_LOG_ERROR, __VA_ARGS__)

/* ---- arena: bump allocator freed in one call ----------------------------- */
typedef struct shelf_arena shelf_arena;
/* block_size: bytes per block (0: 1 MiB). Returns NULL on out of memory.
 * Free with shelf_arena_free. Not thread safe. */
SHELF_API shelf_arena *shelf_arena_new(size_t block_size);
/* size bytes aligned to align (a power of two, <= 4096); NULL on out of
 * memory. Memory lives until reset or free. */
SHELF_API void *shelf_arena_alloc(shelf_arena *a, size_t size, size_t align);
/* Copy of s (NUL-terminated) in the arena, or NULL. */
SHELF_API char *shelf_arena_strdup(shelf_arena *a, const char *s);
SHELF_API char *shelf_arena_strndup(shelf_arena *a, const char *s, size_t n);
/* Forgets all allocations, keeps the first block for reuse. */
SHELF_API void shelf_arena_reset(shelf_arena *a);
SHELF_API size_t shelf_arena_used(const shelf_arena *a);
SHELF_API void shelf_arena_free(shelf_arena *a); /* accepts NULL */

/* ---- RNG: xoshiro256** seeded through splitmix64 ------------------------ */
typedef struct shelf_rng {
    uint64_t s[4];
} shelf_rng;

SHELF_API void shelf_rng_seed(shelf_rng *r, uint64_t seed);
SHELF_API uint64_t shelf_rng_u64(shelf_rng *r);
/* Uniform in [0, n) without modulo bias; n > 0. */
SHELF_API uint32_t shelf_rng_below(shelf_rng *r, uint32_t n);
/* Uniform double in [0, 1). */
SHELF_API double shelf_rng_uniform(shelf_rng *r);
/* Standard normal (Box-Muller). */
SHELF_API double shelf_rng_normal(shelf_rng *r);
/* Independent stream number `stream` derived from a seed (for threads). */
SHELF_API void shelf_rng_split(shelf_rng *r, uint64_t seed, uint64_t stream);

/* ---- string -> uint32 map (open addressing, xxHash) ---------------------- */
/* Keys are copied into the map's own arena. Not thread safe. */
typedef struct shelf_strmap shelf_strmap;
SHELF_API shelf_strmap *shelf_strmap_new(size_t capacity_hint); /* NULL on ENOMEM */
SHELF_API void shelf_strmap_free(shelf_strmap *m);             /* accepts NULL */
/* 1 and *val if found, 0 if not. len: key length in bytes. */
SHELF_API int shelf_strmap_get(const shelf_strmap *m, const char *key, size_t len, uint32_t *val);
/* Inserts or overwrites; 0 or SHELF_ENOMEM. */
SHELF_API int shelf_strmap_put(shelf_strmap *m, const char *key, size_t len, uint32_t val);
SHELF_API size_t shelf_strmap_count(const shelf_strmap *m);

/* ---- progress bar: rate and ETA on a terminal ----------------------------- */
/* Draws on stderr at most 10 times a second when stderr is a terminal and
 * `enabled` is non-zero; otherwise silent. total 0: unknown (no ETA). */
typedef struct shelf_progress shelf_progress;
SHELF_API shelf_progress *shelf_progress_new(const char *label, uint64_t total, int enabled);
/* done: units finished so far; note: short text shown after the bar (may be
 * NULL). Cheap when called often. */
SHELF_API void shelf_progress_update(shelf_progress *p, uint64_t done, const char *note);
/* Unit shown after counts and rates: "B" prints bytes as kB/MB/GB (default:
 * plain counts). p may be NULL. */
SHELF_API void shelf_progress_set_unit(shelf_progress *p, const char *unit);
/* Sets the total once the work is known (0: unknown). p may be NULL. */
SHELF_API void shelf_progress_set_total(shelf_progress *p, uint64_t total);
/* Ends the line (final count, rate, elapsed) and frees p; accepts NULL. */
SHELF_API void shelf_progress_finish(shelf_progress *p);
/* Monotonic seconds. */
SHELF_API double shelf_now(void);
/* 1 if stderr is a terminal. */
SHELF_API int shelf_stderr_is_tty(void);

/* ---- small helpers ------------------------------------------------------- */
/* Checked 64-bit FNV-free hash of bytes (xxh3-64). */
SHELF_API uint64_t shelf_hash64(const void *data, size_t len, uint64_t seed);
/* 1 if s[0..len) is valid UTF-8, else 0 and *bad_offset = first bad byte. */
SHELF_API int shelf_utf8_valid(const char *s, size_t len, size_t *bad_offset);

#ifdef __cplusplus
}
#endif
#endif
