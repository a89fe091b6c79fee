/* util.h: what the libFuzzer targets of tests/fuzz/ share: a scratch folder
 * on tmpfs (removed at exit), inputs written to files there, NUL-terminated
 * copies, and the split of one input into a mode byte and parts. */
#ifndef SHELF_FUZZ_UTIL_H
#define SHELF_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* libFuzzer's entry points, defined by each target */
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The target's scratch folder: /dev/shm/shelf-fuzz-PID (else under $TMPDIR
 * or /tmp), created on the first call, removed with what it holds at exit.
 * Aborts when it cannot be made: a harness without it finds nothing. */
const char *fuzz_dir(void);
/* fuzz_dir()/name in a static buffer (the last 4 results stay valid). */
const char *fuzz_path(const char *name);
/* Writes data[0..n) to path (created or truncated); aborts on failure. */
void fuzz_write(const char *path, const void *data, size_t n);
/* A malloc'd copy of data[0..n) with a NUL after it (free); aborts on ENOMEM. */
char *fuzz_strndup(const uint8_t *data, size_t n);
/* Splits data[0..n) at its first NUL byte: a, na the part before it; b, nb
 * the rest after it (empty when there is no NUL). */
void fuzz_split(const uint8_t *data, size_t n, const uint8_t **a, size_t *na, const uint8_t **b, size_t *nb);
/* A generated shop (shelf_gen_store with these sizes, the rest its
 * defaults) written to a new store at path (":memory:" too), closed, and
 * its snapshot (free with shelf_snapshot_free); aborts on failure. */
struct shelf_snapshot *fuzz_shop(const char *path, uint32_t n_users, uint32_t n_items, uint64_t n_events);
/* Aborts with "fuzz: what" on stderr: a harness that cannot set up. */
_Noreturn void fuzz_die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
