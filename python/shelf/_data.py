"""_data.py: what models fit on. Any input (a Store, a scipy user x item
matrix, a list of item sequences) becomes a snapshot plus the mapping
between the caller's ids and the snapshot's dense indices."""
import numpy as np

from ._lib import NONE, InvalidArgument, ffi, lib
from .store import Snapshot, Store, _add_and_commit


class UnknownId(LookupError):
    """A user or item id the fitted data does not have."""


class Data:
    """A snapshot and its ids. by_index: users (items) are the row (column)
    indices of a matrix / the positions of a sequence list, else the
    store's external string ids."""

    def __init__(self, snap, users_by_index, items_by_index, keep=None):
        self.snap = snap
        self.users_by_index = users_by_index
        self.items_by_index = items_by_index
        self._keep = keep  # the store the snapshot came from, when we made it
        self._user_map = None
        self._item_map = None
        self._item_arr = None

    @property
    def n_users(self):
        return self.snap.n_users

    @property
    def n_items(self):
        return self.snap.n_items

    def _index(self, x, by_index, n, ids_fn, what):
        if by_index:
            if isinstance(x, (bool, np.bool_)) or not isinstance(x, (int, np.integer)):
                raise TypeError("%s id: the model was fitted on a matrix or sequences, so %ss are integer "
                                "indices, not %r" % (what, what, x))
            if not 0 <= x < n:
                raise UnknownId("%s %d is out of range: the model knows %d %ss (0..%d)" % (what, x, n, what, n - 1))
            return int(x)
        key = x.decode() if isinstance(x, bytes) else str(x) if isinstance(x, (int, np.integer)) else x
        if not isinstance(key, str):
            raise TypeError("%s id: want a string (the store's id), not %r" % (what, x))
        m = ids_fn()
        try:
            return m[key]
        except KeyError:
            raise UnknownId("unknown %s id %r (the model was fitted on %d %ss)" % (what, key, n, what)) from None

    def _users(self):
        if self._user_map is None:
            self._user_map = {u: k for k, u in enumerate(self.snap.user_ids)}
        return self._user_map

    def _items(self):
        if self._item_map is None:
            self._item_map = {u: k for k, u in enumerate(self.snap.item_ids)}
        return self._item_map

    def user_index(self, u):
        return self._index(u, self.users_by_index, self.n_users, self._users, "user")

    def item_index(self, i):
        return self._index(i, self.items_by_index, self.n_items, self._items, "item")

    def item_ids(self, idx):
        """The caller's ids of dense item indices idx (an array)."""
        idx = np.asarray(idx, dtype=np.int64)
        if self.items_by_index:
            return idx
        if self._item_arr is None:
            self._item_arr = np.array(self.snap.item_ids, dtype=object)
        return self._item_arr[idx]

    def user_ids(self):
        return np.arange(self.n_users) if self.users_by_index else np.array(self.snap.user_ids, dtype=object)


def _fill(st, users_n, items, u, i, type_ids, values=None):
    """Writes users "0".."users_n-1", then items (in order) and the events
    (u, i: dense indices; type_ids per event) into the fresh store st."""
    h = st.handle
    idx = ffi.new("uint32_t *")
    rc = lib.shelf_store_begin(h)
    if rc:
        raise st._fail(rc)
    try:
        for k in range(users_n):
            b = str(k).encode()
            rc = lib.shelf_store_user_idx(h, b, len(b), 1, idx, ffi.NULL)
            if rc or idx[0] != k:
                raise st._fail(rc or -3)
        for k, ext in enumerate(items):
            rc = lib.shelf_store_item_idx(h, ext, len(ext), 1, idx, ffi.NULL)
            if rc:
                raise st._fail(rc)
            if idx[0] != k:
                raise InvalidArgument(-3, "item id %r given twice" % ext.decode())
        # no times: the insertion order is the order
        _add_and_commit(st, u, i, type_ids, 0 if values is None else values, 0)
    except BaseException:
        lib.shelf_store_rollback(h)
        raise


def _type_id(st, name, weight=None):
    t = ffi.new("uint32_t *")
    w = ffi.new("float *")
    rc = lib.shelf_store_event_type(st.handle, name.encode(), t, w)
    if rc == 0:
        return t[0]
    rc = lib.shelf_store_add_event_type(st.handle, name.encode(), weight, t)
    if rc:
        raise st._fail(rc)
    return t[0]


MAX_VALUE_TYPES = 64


def from_matrix(X):
    """A scipy sparse user x item matrix: one event per stored entry, users
    and items the row and column indices. Each event's weight (what the
    models sum into the user x item matrix) is the entry's value: 1 is the
    type view; other values become event types "value=V" of weight V, at
    most MAX_VALUE_TYPES distinct ones."""
    import scipy.sparse as sps
    if not sps.issparse(X):
        raise TypeError("want a scipy.sparse user x item matrix, got %s" % type(X).__name__)
    X = sps.csr_matrix(X, copy=True)
    X.sum_duplicates()
    X.eliminate_zeros()
    X.sort_indices()
    U, I = X.shape
    st = Store(":memory:")
    data = np.asarray(X.data, dtype=np.float64)
    distinct = np.unique(data)
    if len(distinct) > MAX_VALUE_TYPES:
        raise InvalidArgument(-3, "the matrix holds %d distinct values; shelf weighs events by their type, so at "
                                  "most %d distinct values (counts, grades) can be kept: binarize it "
                                  "(X.data[:] = 1) or import events into a shelf.Store" % (len(distinct),
                                                                                            MAX_VALUE_TYPES))
    tids = {}
    for v in distinct.tolist():
        tids[v] = _type_id(st, "view") if v == 1.0 else _type_id(st, "value=%.9g" % v, float(v))
    type_ids = np.array([tids[v] for v in distinct.tolist()], dtype=np.uint32)[np.searchsorted(distinct, data)]
    u = np.repeat(np.arange(U, dtype=np.uint32), np.diff(X.indptr))
    _fill(st, U, [str(k).encode() for k in range(I)], u, X.indices.astype(np.uint32), type_ids)
    return Data(st.snapshot(), True, True, keep=st)


def from_sequences(seqs):
    """A list of item sequences (oldest first), one per user: users are the
    list positions; items integer ids (0..max, all kept) or strings."""
    seqs = [list(s) if not isinstance(s, np.ndarray) else s.tolist() for s in seqs]
    flat = [x for s in seqs for x in s]
    ints = all(isinstance(x, (int, np.integer)) and not isinstance(x, bool) for x in flat)
    if ints:
        if flat and min(flat) < 0:
            raise ValueError("sequences: item ids must be >= 0, got %d" % min(flat))
        n_items = (max(flat) + 1) if flat else 0
        items = [str(k).encode() for k in range(n_items)]
        item_idx = np.array(flat, dtype=np.uint32)
    else:
        if not all(isinstance(x, str) for x in flat):
            raise TypeError("sequences: item ids must be all integers or all strings")
        order = {}
        for x in flat:
            order.setdefault(x, len(order))
        items = [x.encode("utf-8") for x in order]
        item_idx = np.array([order[x] for x in flat], dtype=np.uint32)
    st = Store(":memory:")
    u = np.repeat(np.arange(len(seqs), dtype=np.uint32), [len(s) for s in seqs])
    _fill(st, len(seqs), items, u, item_idx, _type_id(st, "view"))
    return Data(st.snapshot(), True, ints, keep=st)


def as_data(x):
    """Data for x: a Data, a Store, a Snapshot, a scipy sparse matrix or a
    list of sequences."""
    if isinstance(x, Data):
        return x
    if isinstance(x, Store):
        return Data(x.snapshot(), False, False)
    if isinstance(x, Snapshot):
        return Data(x, False, False)
    try:
        import scipy.sparse as sps
        if sps.issparse(x):
            return from_matrix(x)
    except ImportError:
        pass
    if isinstance(x, (list, tuple)) and all(isinstance(s, (list, tuple, np.ndarray)) for s in x):
        return from_sequences(x)
    raise TypeError("cannot fit on %s: want a shelf.Store, a scipy.sparse user x item matrix or a list of item "
                    "sequences" % type(x).__name__)


__all__ = ["Data", "UnknownId", "as_data", "from_matrix", "from_sequences", "NONE"]
