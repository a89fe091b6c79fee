/* snapshot_file.c: a snapshot as one binary file, written atomically (temp
 * file, fsync, rename) and loaded by mapping it read-only. Data room.
 *
 * File layout (version 3, native little-endian, every offset from the start):
 *   [0, 896)  header: magic "SHELFSNP", version, header size, byte-order
 *             mark, section count, file size, all counts, xxh3-64 of the
 *             data, xxh3-64 of the header itself, the section table
 *             (id, offset, size) of SHELF__SEC_COUNT entries
 *   then      each section at a 64-byte aligned offset, in id order, zero
 *             padding between them
 * The data checksum covers every byte after the header, padding included;
 * the header checksum covers the header with its own field zeroed.
 * Version 2 added the item text sections (ITEM_TEXT_OFF, ITEM_TEXT) and its
 * byte count; version 3 the user feature sections (UFEAT_OFF, UFEAT_COL,
 * UFEAT_NAME_OFF, UFEAT_NAME), n_user_feats (where reserved0 was) and their
 * link and byte counts. Files of any other version are refused with
 * SHELF_EVERSION (rebuild the snapshot from the store). */
#include "data/snapshot_int.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#define SNAP_MAGIC "SHELFSNP"
#define SNAP_VERSION 3u
#define SNAP_BOM 0x01020304u

typedef struct snap_sec_entry {
    uint32_t id;
    uint32_t reserved;
    uint64_t offset, size; /* bytes */
} snap_sec_entry;

typedef struct snap_header {
    char magic[8];
    uint32_t version;
    uint32_t header_size;
    uint32_t bom;
    uint32_t n_sections;
    uint64_t file_size;
    uint32_t n_users, n_items, n_types, n_attrs;
    uint32_t n_categories, n_brands, n_price_buckets, n_user_feats;
    uint64_t n_events, n_nnz, n_attr_links, user_ext_bytes, item_ext_bytes, type_name_bytes;
    uint64_t item_text_bytes;
    uint64_t n_ufeat_links, ufeat_name_bytes;
    uint64_t data_hash;
    uint64_t header_hash;
    snap_sec_entry sec[SHELF__SEC_COUNT];
    uint8_t pad[24]; /* to 896 bytes */
} snap_header;

_Static_assert(sizeof(snap_sec_entry) == 24, "section entry layout");
_Static_assert(SHELF__SEC_COUNT == 30, "new sections need a new format version");
_Static_assert(sizeof(snap_header) == 896, "header layout");
_Static_assert(sizeof(snap_header) % SHELF__SNAP_ALIGN == 0, "header keeps sections aligned");

static uint64_t align_up(uint64_t n)
{
    return (n + SHELF__SNAP_ALIGN - 1) & ~(uint64_t)(SHELF__SNAP_ALIGN - 1);
}

static uint64_t header_hash(const snap_header *h)
{
    snap_header c = *h;
    c.header_hash = 0;
    return XXH3_64bits(&c, sizeof c);
}

/* ============================================================================
 * Save
 * ========================================================================== */

static int write_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n > 0) {
        size_t chunk = n > ((size_t)1 << 30) ? (size_t)1 << 30 : n;
        ssize_t w = write(fd, p, chunk);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* fsync of the directory holding path, so that the rename is durable. */
static int fsync_dir(const char *path)
{
    char *copy = strdup(path);
    if (!copy) return -1;
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(copy);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

int shelf_snapshot_save(const shelf_snapshot *s, const char *path, shelf_err *err)
{
    if (!s || !path) return shelf_err_set(err, SHELF_EINVAL, "snapshot save: NULL argument");
    if (!s->mem)
        return shelf_err_set(err, SHELF_EINVAL,
                             "%s: not a snapshot from from_store, subset or load", path);
    const struct shelf_snapshot_mem *m = s->mem;
    snap_header h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, SNAP_MAGIC, 8);
    h.version = SNAP_VERSION;
    h.header_size = sizeof h;
    h.bom = SNAP_BOM;
    h.n_sections = SHELF__SEC_COUNT;
    h.n_users = s->n_users;
    h.n_items = s->n_items;
    h.n_types = s->n_types;
    h.n_attrs = s->n_attrs;
    h.n_categories = s->n_categories;
    h.n_brands = s->n_brands;
    h.n_price_buckets = s->n_price_buckets;
    h.n_user_feats = s->n_user_feats;
    h.n_events = s->n_events;
    h.n_nnz = s->n_nnz;
    h.n_attr_links = m->n_attr_links;
    h.user_ext_bytes = m->user_ext_bytes;
    h.item_ext_bytes = m->item_ext_bytes;
    h.type_name_bytes = m->type_name_bytes;
    h.item_text_bytes = m->item_text_bytes;
    h.n_ufeat_links = m->n_ufeat_links;
    h.ufeat_name_bytes = m->ufeat_name_bytes;
    uint64_t off = sizeof h;
    for (int id = 0; id < SHELF__SEC_COUNT; id++) {
        off = align_up(off);
        h.sec[id].id = (uint32_t)id;
        h.sec[id].offset = off;
        h.sec[id].size = shelf__snap_sec_count(s, id) * shelf__snap_sec_elem(id);
        off += h.sec[id].size;
    }
    h.file_size = off;

    size_t plen = strlen(path);
    char *tmp = malloc(plen + 5);
    XXH3_state_t *xs = XXH3_createState();
    if (!tmp || !xs) {
        free(tmp);
        XXH3_freeState(xs);
        return shelf_err_set(err, SHELF_ENOMEM, "%s: out of memory", path);
    }
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp", 5);
    XXH3_64bits_reset(xs);

    static const char zeros[SHELF__SNAP_ALIGN];
    const char *what = "open";
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) goto fail;
    what = "write";
    if (write_all(fd, &h, sizeof h)) goto fail; /* placeholder until the hash is known */
    uint64_t pos = sizeof h;
    for (int id = 0; id < SHELF__SEC_COUNT; id++) {
        size_t gap = (size_t)(h.sec[id].offset - pos);
        if (gap) {
            XXH3_64bits_update(xs, zeros, gap);
            if (write_all(fd, zeros, gap)) goto fail;
        }
        const void *p = shelf__snap_sec_get(s, id);
        size_t n = (size_t)h.sec[id].size;
        if (n) {
            XXH3_64bits_update(xs, p, n);
            if (write_all(fd, p, n)) goto fail;
        }
        pos = h.sec[id].offset + n;
    }
    h.data_hash = XXH3_64bits_digest(xs);
    h.header_hash = header_hash(&h);
    if (pwrite(fd, &h, sizeof h, 0) != (ssize_t)sizeof h) goto fail;
    what = "fsync";
    if (fsync(fd)) goto fail;
    what = "close";
    int cfd = fd;
    fd = -1;
    if (close(cfd)) goto fail;
    what = "rename";
    if (rename(tmp, path)) goto fail;
    what = "fsync directory of";
    if (fsync_dir(path)) goto fail_kept;
    free(tmp);
    XXH3_freeState(xs);
    return 0;

fail:;
    int e = errno;
    if (fd >= 0) close(fd);
    unlink(tmp);
    free(tmp);
    XXH3_freeState(xs);
    return shelf_err_set(err, SHELF_EIO, "%s: cannot %s temporary file: %s", path, what,
                         strerror(e));
fail_kept:
    e = errno;
    free(tmp);
    XXH3_freeState(xs);
    return shelf_err_set(err, SHELF_EIO, "%s: cannot %s it: %s", path, what, strerror(e));
}

/* ============================================================================
 * Load
 * ========================================================================== */

static int corrupt(shelf_err *err, void *map, size_t len, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static int corrupt(shelf_err *err, void *map, size_t len, const char *path, const char *fmt, ...)
{
    char why[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    if (map) munmap(map, len);
    return shelf_err_set(err, SHELF_ECORRUPT, "%s: %s", path, why);
}

int shelf_snapshot_load(const char *path, int no_verify, shelf_snapshot **out, shelf_err *err)
{
    if (!path || !out) return shelf_err_set(err, SHELF_EINVAL, "snapshot load: NULL argument");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        return shelf_err_set(err, e == ENOENT ? SHELF_ENOTFOUND : SHELF_EIO, "%s: cannot open: %s",
                             path, strerror(e));
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return shelf_err_set(err, SHELF_EIO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return shelf_err_set(err, SHELF_EIO, "%s: not a regular file", path);
    }
    if ((uint64_t)sb.st_size > (uint64_t)SIZE_MAX / 2) {
        close(fd);
        return shelf_err_set(err, SHELF_EIO, "%s: too large to map", path);
    }
    size_t len = (size_t)sb.st_size;
    if (len < 8) {
        close(fd);
        return corrupt(err, NULL, 0, path, "not a snapshot file (%zu bytes)", len);
    }
    void *map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (map == MAP_FAILED)
        return shelf_err_set(err, SHELF_EIO, "%s: cannot map: %s", path, strerror(e));
    const char *base = map;

    /* Header: magic, version, then its own checksum before any field is used. */
    if (memcmp(base, SNAP_MAGIC, 8) != 0)
        return corrupt(err, map, len, path, "not a snapshot file (bad magic)");
    if (len < 12) return corrupt(err, map, len, path, "truncated header (%zu bytes)", len);
    uint32_t version;
    memcpy(&version, base + 8, 4);
    if (version != SNAP_VERSION) {
        munmap(map, len);
        return shelf_err_set(err, SHELF_EVERSION,
                             "%s: snapshot format version %u, this build reads version %u; "
                             "rebuild it with `shelf snapshot`",
                             path, version, SNAP_VERSION);
    }
    snap_header h;
    if (len < sizeof h)
        return corrupt(err, map, len, path, "truncated header (%zu of %zu bytes)", len, sizeof h);
    memcpy(&h, base, sizeof h);
    if (h.header_size != sizeof h)
        return corrupt(err, map, len, path, "header size %u, expected %zu", h.header_size,
                       sizeof h);
    if (header_hash(&h) != h.header_hash)
        return corrupt(err, map, len, path, "header checksum mismatch");
    if (h.bom != SNAP_BOM)
        return corrupt(err, map, len, path, "written on a machine of another byte order");
    if (h.n_sections != SHELF__SEC_COUNT)
        return corrupt(err, map, len, path, "%u sections, expected %d", h.n_sections,
                       SHELF__SEC_COUNT);
    if (h.file_size != len)
        return corrupt(err, map, len, path, "file is %zu bytes, header says %llu (truncated?)",
                       len, (unsigned long long)h.file_size);

    shelf_snapshot *s = shelf__snap_new();
    if (!s) {
        munmap(map, len);
        return shelf_err_set(err, SHELF_ENOMEM, "%s: out of memory", path);
    }
    s->n_users = h.n_users;
    s->n_items = h.n_items;
    s->n_types = h.n_types;
    s->n_attrs = h.n_attrs;
    s->n_categories = h.n_categories;
    s->n_brands = h.n_brands;
    s->n_price_buckets = h.n_price_buckets;
    s->n_user_feats = h.n_user_feats;
    s->n_events = h.n_events;
    s->n_nnz = h.n_nnz;
    s->mem->n_attr_links = h.n_attr_links;
    s->mem->user_ext_bytes = h.user_ext_bytes;
    s->mem->item_ext_bytes = h.item_ext_bytes;
    s->mem->type_name_bytes = h.type_name_bytes;
    s->mem->item_text_bytes = h.item_text_bytes;
    s->mem->n_ufeat_links = h.n_ufeat_links;
    s->mem->ufeat_name_bytes = h.ufeat_name_bytes;

    /* Sections: inside the file, aligned, of the size the counts imply. */
    for (int id = 0; id < SHELF__SEC_COUNT; id++) {
        const snap_sec_entry *se = &h.sec[id];
        uint64_t cnt = shelf__snap_sec_count(s, id), el = shelf__snap_sec_elem(id);
        if (se->id != (uint32_t)id || se->offset % SHELF__SNAP_ALIGN != 0 ||
            se->offset < sizeof h || se->offset > len || se->size > len - se->offset) {
            shelf_snapshot_free(s);
            return corrupt(err, map, len, path, "section %d (id %u) at %llu+%llu lies outside the file",
                           id, se->id, (unsigned long long)se->offset,
                           (unsigned long long)se->size);
        }
        if (cnt > se->size / el || cnt * el != se->size) {
            shelf_snapshot_free(s);
            return corrupt(err, map, len, path,
                           "section %d is %llu bytes, the counts imply %llu elements of %llu", id,
                           (unsigned long long)se->size, (unsigned long long)cnt,
                           (unsigned long long)el);
        }
        shelf__snap_sec_set(s, id, base + se->offset);
    }
    s->mem->map = map;
    s->mem->map_len = len;

    if (!no_verify) {
        uint64_t hh = XXH3_64bits(base + sizeof h, len - sizeof h);
        if (hh != h.data_hash) {
            shelf_snapshot_free(s);
            return shelf_err_set(err, SHELF_ECORRUPT, "%s: data checksum mismatch", path);
        }
    }
    char why[512];
    int rc = shelf__snap_check(s, !no_verify, why, sizeof why);
    if (rc) {
        shelf_snapshot_free(s);
        return shelf_err_set(err, rc, "%s: %s", path, why);
    }
    *out = s;
    return 0;
}
