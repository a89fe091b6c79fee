"""store.py: shelf.Store, a handle on a shelf store (the SQLite file, or
":memory:") with the importers and bulk event insertion, and the snapshot
(the training view of a store) that models fit on."""
import os

import numpy as np

from ._lib import InvalidArgument, cstr, error, ffi, lib

_FORMATS = ("s3rec", "pairs", "csv", "jsonl", "ml100k", "taobao")
_WHAT = {"events": 0, "items": 1, "users": 2}
# Python keyword -> shelf_import_opts field (string options, as the CLI's flags)
_STR_OPTS = {
    "map": "mapping",
    "type": "event_type",
    "event_type": "event_type",
    "type_map": "type_map",
    "event_types": "event_types",
    "columns": "columns",
    "attributes": "attributes_path",
    "item_file": "items_path",
}
_IMPORT_KEYS = sorted(set(_STR_OPTS) | {"what", "delimiter", "category_separator", "allow_duplicates", "progress"})


def _b(s):
    return s.encode("utf-8") if isinstance(s, str) else bytes(s)


def _id_strings(ids, what):
    """ids (str, int, or an array of either) as a list of bytes."""
    arr = np.asarray(ids)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise ValueError("%s ids: want a 1-d sequence, got shape %s" % (what, arr.shape))
    if arr.dtype.kind in "iu":
        return [str(int(x)).encode() for x in arr]
    if arr.dtype.kind in "USO":
        out = []
        for x in arr.tolist():
            if isinstance(x, bytes):
                out.append(x)
            elif isinstance(x, (str, int, np.integer)) and not isinstance(x, bool):
                out.append(str(x).encode("utf-8"))
            else:
                raise TypeError("%s ids: want strings or integers, got %r" % (what, x))
        return out
    raise TypeError("%s ids: want strings or integers, got an array of %s" % (what, arr.dtype))


class Store:
    """A shelf store: Store(":memory:") or Store("shop.db") (created if
    missing unless readonly). Close it with close() or a with block. One
    handle per thread, as the C library says."""

    def __init__(self, path=":memory:", readonly=False, create=True):
        self.path = os.fspath(path)
        flags = lib.SHELF_STORE_READONLY if readonly else (lib.SHELF_STORE_CREATE if create else 0)
        err = ffi.new("shelf_err *")
        out = ffi.new("shelf_store **")
        rc = lib.shelf_store_open(_b(self.path), flags, out, err)
        if rc:
            raise error(rc, ffi.string(err.msg).decode("utf-8", "replace"))
        self._st = out[0]

    # ---- lifetime ---------------------------------------------------------
    def close(self):
        if getattr(self, "_st", None) is not None:
            lib.shelf_store_close(self._st)
            self._st = None

    def __del__(self):
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def handle(self):
        if self._st is None:
            raise ValueError("shelf.Store: the store is closed")
        return self._st

    def _fail(self, rc):
        return error(rc, cstr(lib.shelf_store_errmsg(self._st)))

    def __repr__(self):
        if self._st is None:
            return "<shelf.Store %r (closed)>" % self.path
        return "<shelf.Store %r: %d users, %d items>" % (self.path, self.n_users, self.n_items)

    # ---- counts and ids ------------------------------------------------------
    @property
    def n_users(self):
        return int(lib.shelf_store_n_users(self.handle))

    @property
    def n_items(self):
        return int(lib.shelf_store_n_items(self.handle))

    def _ext(self, fn, idx):
        buf = ffi.new("char[]", 4096)
        rc = fn(self.handle, idx, buf, 4096)
        if rc:
            raise self._fail(rc)
        return ffi.string(buf).decode("utf-8", "replace")

    def user_id(self, idx):
        """External id of dense user index idx."""
        return self._ext(lib.shelf_store_user_ext, idx)

    def item_id(self, idx):
        """External id of dense item index idx."""
        return self._ext(lib.shelf_store_item_ext, idx)

    def stats(self):
        """shelf_store_stats as a dict (what `shelf stats` prints)."""
        s = ffi.new("shelf_store_stats *")
        rc = lib.shelf_store_stats_get(self.handle, s)
        if rc:
            raise self._fail(rc)
        out = {k: getattr(s, k) for k in ("n_users", "n_items", "n_events", "n_attrs", "n_served", "n_active_users",
                                          "n_active_items", "n_pairs", "density", "seq_min", "seq_max", "seq_p50",
                                          "seq_p90", "seq_p99", "seq_mean", "ts_min", "ts_max")}
        n = min(s.n_types, lib.SHELF_STATS_MAX_TYPES)
        out["types"] = {ffi.string(s.type_name[i]).decode(): int(s.type_count[i]) for i in range(n)}
        return out

    # ---- import ---------------------------------------------------------------
    def import_file(self, path, format, **opts):
        """Imports path (format: s3rec|pairs|csv|jsonl|ml100k|taobao) in one
        transaction, through shelf_import_file; options as `shelf import`'s
        flags: what, map, type (event_type), type_map, event_types, columns,
        delimiter ("\\t" or "tab" for tab), category_separator,
        allow_duplicates, attributes, item_file. Returns the import result
        as a dict. A bad record raises InvalidArgument naming file, line and
        field; nothing of the file is stored then."""
        fmt = ffi.new("shelf_import_format *")
        if format not in _FORMATS or lib.shelf_import_format_parse(_b(format), fmt):
            raise InvalidArgument(-3, "import: unknown format %r (one of %s)" % (format, "|".join(_FORMATS)))
        o = ffi.new("shelf_import_opts *")
        lib.shelf_import_opts_init(o, fmt[0])
        keep = []  # C strings alive until the call returns
        for key, val in opts.items():
            k = key.replace("-", "_")
            if val is None:
                continue
            if k in _STR_OPTS:
                c = ffi.new("char[]", _b(os.fspath(val) if k in ("attributes", "item_file") else str(val)))
                keep.append(c)
                setattr(o, _STR_OPTS[k], c)
            elif k == "what":
                if val not in _WHAT:
                    raise InvalidArgument(-3, "import: what=%r: one of events|items|users" % (val,))
                o.what = _WHAT[val]
            elif k == "delimiter":
                d = "\t" if val in ("\\t", "tab") else val
                if len(d) != 1:
                    raise InvalidArgument(-3, "import: delimiter must be one character or \\t, not %r" % (val,))
                o.delimiter = _b(d)
            elif k == "category_separator":
                if len(val) != 1:
                    raise InvalidArgument(-3, "import: category_separator must be one character, not %r" % (val,))
                o.category_separator = _b(val)
            elif k == "allow_duplicates":
                o.allow_duplicates = 1 if val else 0
            elif k == "progress":
                o.progress = 1 if val else 0
            else:
                raise TypeError("import: unknown option %r (options: %s)" % (key, ", ".join(_IMPORT_KEYS)))
        res = ffi.new("shelf_import_result *")
        rc = lib.shelf_import_file(self.handle, _b(os.fspath(path)), o, res)
        if rc:
            raise self._fail(rc)
        out = {k: getattr(res, k) for k in ("n_lines", "n_events", "n_new_users", "n_new_items", "n_items",
                                            "n_users", "n_dropped", "n_default_type", "n_new_types",
                                            "n_duplicates", "first_duplicate", "imported_at", "imported_events",
                                            "seconds")}
        out["already_imported"] = bool(res.already_imported)
        out["n_skipped"] = sum(res.n_skipped[i] for i in range(4))
        return out

    def import_csv(self, path, **opts):
        """import_file(path, format="csv", **opts): a header-driven CSV of
        events (or items/users with what=...)."""
        return self.import_file(path, "csv", **opts)

    # ---- events ----------------------------------------------------------------
    def _idx(self, fn, ids, what):
        """Dense indices of ids (created when new), each distinct id looked up once."""
        uniq, first, inv = np.unique(np.array(ids, dtype=object), return_index=True, return_inverse=True)
        out = np.empty(len(uniq), dtype=np.uint32)
        idx = ffi.new("uint32_t *")
        for k in np.argsort(first, kind="stable").tolist():  # new ids get indices in order of appearance
            ext = uniq[k]
            if not ext:
                raise InvalidArgument(-3, "add_events: empty %s id" % what)
            rc = fn(self._st, ext, len(ext), 1, idx, ffi.NULL)
            if rc:
                raise self._fail(rc)
            out[k] = idx[0]
        return out[inv]

    def add_events(self, user_ids, item_ids, types="view", ts=None, values=None):
        """Appends events in one transaction (shelf_store_add_events): user
        and item ids (strings or integers, new ones are created), types (one
        name for all, or one per event; the store's types: view, click,
        cart, purchase, rating, ...), ts (unix seconds or numpy datetime64;
        None: 0, insertion order), values (ratings, quantities; None: 0).
        Returns the number of events added. On any error nothing is stored."""
        users = _id_strings(user_ids, "user")
        items = _id_strings(item_ids, "item")
        n = len(users)
        if len(items) != n:
            raise ValueError("add_events: %d user ids but %d item ids" % (n, len(items)))
        if ts is None:
            ts_arr = np.zeros(n, dtype=np.int64)
        else:
            ts_arr = np.asarray(ts)
            if ts_arr.dtype.kind == "M":
                ts_arr = ts_arr.astype("datetime64[s]").astype(np.int64)
            elif ts_arr.dtype.kind not in "iu":
                raise TypeError("add_events: ts must be integers (unix seconds) or datetime64, not %s" % ts_arr.dtype)
            ts_arr = np.ascontiguousarray(np.broadcast_to(ts_arr, (n,)), dtype=np.int64)
        val_arr = np.zeros(n, dtype=np.float32) if values is None else \
            np.ascontiguousarray(np.broadcast_to(np.asarray(values, dtype=np.float32), (n,)))
        if isinstance(types, (str, bytes)):
            type_names = [types] * n if n else []
        else:
            type_names = list(types)
            if len(type_names) != n:
                raise ValueError("add_events: %d events but %d types" % (n, len(type_names)))
        st = self.handle
        type_ids = {}
        tid = ffi.new("uint32_t *")
        for name in set(type_names):
            rc = lib.shelf_store_event_type(st, _b(name), tid, ffi.NULL)
            if rc:
                raise self._fail(rc)
            type_ids[name] = tid[0]
        rc = lib.shelf_store_begin(st)
        if rc:
            raise self._fail(rc)
        try:
            u = self._idx(lib.shelf_store_user_idx, users, "user")
            i = self._idx(lib.shelf_store_item_idx, items, "item")
            _add_and_commit(self, u, i, [type_ids[t] for t in type_names], val_arr, ts_arr)
        except BaseException:
            lib.shelf_store_rollback(st)
            raise
        return n

    def snapshot(self):
        """The training view of everything in the store now (Snapshot)."""
        out = ffi.new("shelf_snapshot **")
        rc = lib.shelf_snapshot_from_store(self.handle, 0, out)
        if rc:
            raise self._fail(rc)
        return Snapshot(out[0])


def _add_and_commit(store, u, i, types, values, ts):
    """Adds the events (dense user and item indices, type ids, values, ts:
    arrays of one length) inside store's open transaction and commits it."""
    n = len(u)
    ev = ffi.new("shelf_event[]", max(n, 1))
    # fill the struct array through a numpy view of its fields
    buf = np.frombuffer(ffi.buffer(ev, n * ffi.sizeof("shelf_event")), dtype=_event_dtype())
    buf["user"] = u
    buf["item"] = i
    buf["type"] = types
    buf["value"] = values
    buf["ts"] = ts
    rc = lib.shelf_store_add_events(store.handle, ev, n)
    if rc:
        raise store._fail(rc)
    rc = lib.shelf_store_commit(store.handle)
    if rc:
        raise store._fail(rc)


def _event_dtype():
    """numpy dtype with shelf_event's field offsets (from cffi, so from the
    header's declaration); rec_id and context stay NULL (zeroed)."""
    f = dict(ffi.typeof("shelf_event").fields)
    return np.dtype({"names": ["user", "item", "type", "value", "ts"],
                     "formats": [np.uint32, np.uint32, np.uint32, np.float32, np.int64],
                     "offsets": [f[k].offset for k in ("user", "item", "type", "value", "ts")],
                     "itemsize": ffi.sizeof("shelf_event")})


def _array(ptr, n, dtype):
    if n == 0 or ptr == ffi.NULL:
        return np.zeros(0, dtype=dtype)
    return np.frombuffer(ffi.buffer(ptr, n * np.dtype(dtype).itemsize), dtype=dtype)


def _strings(base, off, n):
    """n NUL-terminated strings at base + off[k]."""
    if n == 0:
        return []
    last = int(off.max())
    raw = bytes(ffi.buffer(base, last + len(ffi.string(base + last)) + 1))
    return [raw[o:raw.index(b"\0", o)].decode("utf-8", "replace") for o in off.tolist()]


class Snapshot:
    """A shelf_snapshot (freed with the object): per-user sequences and the
    user x item CSR matrix as numpy views of the C arrays, and the external
    ids."""

    def __init__(self, ptr):
        self._p = ffi.gc(ptr, lib.shelf_snapshot_free)
        s = self._p
        self.n_users = int(s.n_users)
        self.n_items = int(s.n_items)
        self.n_events = int(s.n_events)
        U, E = self.n_users, self.n_events
        self.seq_off = _array(s.seq_off, U + 1, np.uint64)
        self.seq_item = _array(s.seq_item, E, np.uint32)
        self.ui_off = _array(s.ui_off, U + 1, np.uint64)
        self.ui_col = _array(s.ui_col, int(s.n_nnz), np.uint32)
        self._users = None
        self._items = None

    @property
    def ptr(self):
        return self._p

    @property
    def user_ids(self):
        if self._users is None:
            s = self._p
            self._users = _strings(s.user_ext, _array(s.user_ext_off, self.n_users, np.uint64), self.n_users)
        return self._users

    @property
    def item_ids(self):
        if self._items is None:
            s = self._p
            self._items = _strings(s.item_ext, _array(s.item_ext_off, self.n_items, np.uint64), self.n_items)
        return self._items

    def seen(self, u):
        """Distinct items of user u's training history (ascending)."""
        return self.ui_col[int(self.ui_off[u]):int(self.ui_off[u + 1])]
