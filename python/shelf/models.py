"""models.py: shelf's models with the calls a user of the `implicit`
library expects: Model(name, **options).fit(data), recommend(user, n),
similar_items(item, n), explain(user, item). Options are the model's rows
of shelf's configuration table (`shelf train --models NAME --help`)."""
import collections

import numpy as np

from ._data import UnknownId, as_data
from ._lib import NONE, InvalidArgument, cstr, error, ffi, lib

Reason = collections.namedtuple("Reason", "item weight text")
Reason.__doc__ = "Why an item was recommended: the history item behind it (None: none), its share, the text."

CAP_SIMILAR = 1 << 2
CAP_EXPLAIN = 1 << 3
CAP_ITEM_VECTORS = 1 << 7
_CHUNK_BYTES = 64 << 20  # scores held at once by a batch


def model_names():
    """Names of the registered models (shelf_model_names)."""
    n = ffi.new("size_t *")
    p = lib.shelf_model_names(n)
    return [cstr(p[k]) for k in range(n[0])]


def model_options(name):
    """The hyperparameters of model name: {option: (type, default, help)}."""
    n = ffi.new("size_t *")
    t = lib.shelf_model_options(name.encode(), n)
    types = {lib.SHELF_CFG_BOOL: "bool", lib.SHELF_CFG_INT: "int", lib.SHELF_CFG_DOUBLE: "double",
             lib.SHELF_CFG_STRING: "string", lib.SHELF_CFG_ENUM: "enum", lib.SHELF_CFG_DURATION: "duration"}
    return {cstr(t[k].name): (types.get(t[k].type, "?"), cstr(getattr(t[k], "def")), cstr(t[k].help))
            for k in range(n[0])}


def _all_model_rows():
    rows = set()
    for m in model_names():
        rows.update(model_options(m))
    return rows


def _text(v):
    if isinstance(v, (bool, np.bool_)):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(v)
    return str(v)


class Config:
    """A shelf_config (every row of the table at its default), freed with
    the object."""

    def __init__(self):
        p = lib.shelf_config_new()
        if p == ffi.NULL:
            raise MemoryError("shelf_config_new")
        self.ptr = ffi.gc(p, lib.shelf_config_free)

    def set(self, name, value, origin=None):
        err = ffi.new("shelf_err *")
        rc = lib.shelf_config_set(self.ptr, name.encode(), _text(value).encode(),
                                  origin.encode() if origin else ffi.NULL, err)
        if rc:
            raise error(rc, ffi.string(err.msg).decode("utf-8", "replace"))

    def get(self, name, kind):
        b = name.encode()
        if kind == "int":
            return int(lib.shelf_config_int(self.ptr, b))
        if kind in ("double", "duration"):
            return float(lib.shelf_config_double(self.ptr, b))
        if kind == "bool":
            return bool(lib.shelf_config_bool(self.ptr, b))
        return cstr(lib.shelf_config_str(self.ptr, b))


class Model:
    """A shelf model by name ("pop", "itemknn", "ease", "als", "bpr",
    "transformer", ...; shelf.models.model_names()). options: the model's
    configuration rows, by their full name (ease_lambda or "ease-lambda")
    or without the model's prefix (lambda_ -> ease-lambda), or by the
    implicit-style aliases of _ALIASES (EASE(l2=...), ALS(regularization=,
    iterations=)); common rows such as seed are taken too. A bad name or value raises the library's
    message."""

    name = None

    def __init__(self, name=None, **options):
        name = name or self.name
        if name is None:
            raise TypeError("Model(name, **options): name is one of %s" % ", ".join(model_names()))
        err = ffi.new("shelf_err *")
        out = ffi.new("shelf_model **")
        rc = lib.shelf_model_new(name.encode(), out, err)
        if rc:
            raise error(rc, ffi.string(err.msg).decode("utf-8", "replace"))
        lib.shelf_model_free(out[0])
        self.name = name
        self._rows = model_options(name)
        self._prefix = None
        firsts = {r.split("-", 1)[0] for r in self._rows if "-" in r}
        if len(firsts) == 1:
            self._prefix = firsts.pop()
        self._cfg = Config()
        self._options = {}
        self._m = None
        self._data = None
        self.set_params(**options)

    # ---- options -----------------------------------------------------------------
    def _row(self, key):
        k = key.rstrip("_").replace("_", "-")
        cls_alias = _ALIASES.get(self.name, {}).get(key)
        if cls_alias:
            return cls_alias
        if k in self._rows:
            return k
        if self._prefix and "%s-%s" % (self._prefix, k) in self._rows:
            return "%s-%s" % (self._prefix, k)
        if k not in _all_model_rows() and lib.shelf_config_find(k.encode()) != ffi.NULL:
            return k  # a common row: seed, threads...
        raise InvalidArgument(-3, "%s: unknown option %r; its options are %s" % (
            self.name, key, ", ".join(sorted(self._rows)) or "(none)"))

    def set_params(self, **options):
        """Sets options (see the class); returns self. Takes effect at the next fit."""
        for key, value in options.items():
            row = self._row(key)
            self._cfg.set(row, value, origin=key)
            self._options[row] = value
        return self

    def get_params(self):
        """The model's options with their values now (defaults included)."""
        return {r: self._cfg.get(r, t[0]) for r, t in self._rows.items()}

    @property
    def options(self):
        """The options set explicitly (row name -> value)."""
        return dict(self._options)

    def __repr__(self):
        opts = ", ".join("%s=%r" % kv for kv in self._options.items())
        return "%s(%r%s)%s" % (type(self).__name__, self.name, ", " + opts if opts else "",
                               "" if self._m is None else " fitted")

    # ---- fit ---------------------------------------------------------------------------
    def fit(self, data, show_progress=False):
        """Learns from data: a shelf.Store (users and items are then the
        store's string ids), a scipy.sparse user x item matrix (row and
        column indices) or a list of item sequences, oldest first (users
        are the list positions; items integer ids or strings). Returns self."""
        d = as_data(data)
        err = ffi.new("shelf_err *")
        out = ffi.new("shelf_model **")
        rc = lib.shelf_model_new(self.name.encode(), out, err)
        if rc:
            raise error(rc, ffi.string(err.msg).decode("utf-8", "replace"))
        m = ffi.gc(out[0], lib.shelf_model_free)
        prog = lib.shelf_progress_new(self.name.encode(), 0, 1 if show_progress else 0)
        rc = lib.shelf_model_fit(m, d.snap.ptr, self._cfg.ptr, prog)
        lib.shelf_progress_finish(prog)
        if rc:
            raise error(rc, cstr(lib.shelf_model_errmsg(m)))
        self._m, self._data = m, d
        self._prepare()
        return self

    def _prepare(self):
        s = self._data.snap
        p = s.ptr
        self._n_items = int(self._m.n_items)
        self._seq_off = s.seq_off.astype(np.int64)
        self._ui_off = s.ui_off.astype(np.int64)
        self._ui_col = s.ui_col
        self._seq_item, self._seq_type, self._seq_ts = p.seq_item, p.seq_type, p.seq_ts
        self._addr = (int(ffi.cast("uintptr_t", p.seq_item)), int(ffi.cast("uintptr_t", p.seq_type)),
                      int(ffi.cast("uintptr_t", p.seq_ts)))
        self._q = ffi.new("shelf_query *")
        self._err = ffi.new("shelf_err *")

    def _fitted(self):
        if self._m is None:
            raise RuntimeError("%s: fit the model first" % self.name)

    @property
    def caps(self):
        self._fitted()
        return int(lib.shelf_model_caps(self._m))

    @property
    def n_users(self):
        self._fitted()
        return self._data.n_users

    @property
    def n_items(self):
        self._fitted()
        return self._n_items

    @property
    def user_ids(self):
        """The users the model knows, in index order."""
        self._fitted()
        return self._data.user_ids()

    @property
    def item_ids(self):
        self._fitted()
        return self._data.item_ids(np.arange(self._n_items))

    # ---- scoring -------------------------------------------------------------------------
    def _query(self, u, history=None):
        """The query of user index u (its whole history: items, types and
        times, as the server's), or of a given history (user NONE)."""
        q = self._q
        if history is None:
            a, b = self._seq_off[u], self._seq_off[u + 1]
            q.user = u
            q.items = self._seq_item + a
            q.types = self._seq_type + a
            q.ts = self._seq_ts + a
            q.n = b - a
            self._q_keep = None
        else:
            h = np.ascontiguousarray(history, dtype=np.uint32)
            q.user = NONE if u is None else u
            q.items = ffi.cast("const uint32_t *", ffi.from_buffer(h))
            q.types = ffi.NULL
            q.ts = ffi.NULL
            q.n = len(h)
            self._q_keep = h
        return q

    def _history(self, items):
        return np.array([self._data.item_index(i) for i in items], dtype=np.uint32)

    def score(self, user=None, history=None):
        """All n_items scores (float32 numpy array) for a user, or for a
        history of items (oldest first) of an anonymous shopper."""
        self._fitted()
        u = None if user is None else self._data.user_index(user)
        if u is None and history is None:
            raise TypeError("score: give a user or a history")
        q = self._query(u, None if history is None else self._history(history))
        out = np.empty(self._n_items, dtype=np.float32)
        rc = lib.shelf_model_score(self._m, q, ffi.from_buffer("float[]", out), self._err)
        if rc:
            raise error(rc, ffi.string(self._err.msg).decode("utf-8", "replace"))
        return out

    def _exclude_mask(self, filter_items):
        if filter_items is None:
            return None
        return np.array([self._data.item_index(i) for i in np.atleast_1d(filter_items).tolist()], dtype=np.int64)

    def recommend(self, user, n=10, filter_already_liked=True, filter_items=None, history=None,
                  filter_already_liked_items=None, N=None):
        """The top n items for user (an id, or an array of ids: one row
        each, scored with shelf_model_score_many), best first, as (ids,
        scores) numpy arrays. filter_already_liked drops the items in the
        user's history; filter_items: ids never to return. history: a list
        of item ids to score instead of the user's own (user None: an
        anonymous shopper). A batch pads short rows with -1 (or None) ids
        and -inf scores. implicit's names filter_already_liked_items and N
        are accepted too."""
        self._fitted()
        if filter_already_liked_items is not None:
            filter_already_liked = filter_already_liked_items
        if N is not None:
            n = N
        n = int(n)
        if n < 0:
            raise ValueError("recommend: n must be >= 0, not %d" % n)
        excl = self._exclude_mask(filter_items)
        if user is not None and not isinstance(user, (str, bytes, int, np.integer)):
            if history is not None:
                raise TypeError("recommend: a history goes with one user, not a batch")
            return self._recommend_many(np.asarray(user), n, filter_already_liked, excl)
        u = None if user is None else self._data.user_index(user)
        if u is None and history is None:
            raise TypeError("recommend: give a user or a history")
        hist = None if history is None else self._history(history)
        q = self._query(u, hist)
        I = self._n_items
        scores = np.empty(I, dtype=np.float32)
        rc = lib.shelf_model_score(self._m, q, ffi.from_buffer("float[]", scores), self._err)
        if rc:
            raise error(rc, ffi.string(self._err.msg).decode("utf-8", "replace"))
        if filter_already_liked:
            if hist is not None:
                scores[hist[hist < I]] = -np.inf
            else:
                scores[self._ui_col[self._ui_off[u]:self._ui_off[u + 1]]] = -np.inf
        if excl is not None:
            scores[excl] = -np.inf
        top = np.empty(min(n, I), dtype=np.uint32)
        k = lib.shelf_topk(ffi.from_buffer("float[]", scores), I, ffi.NULL, len(top),
                           ffi.from_buffer("uint32_t[]", top))
        top = top[:k]
        return self._data.item_ids(top), scores[top]

    def _recommend_many(self, users, n, filter_already_liked, excl):
        if users.ndim != 1:
            raise ValueError("recommend: users must be one id or a 1-d array of ids")
        uidx = np.array([self._data.user_index(u) for u in users.tolist()], dtype=np.int64)
        B, I = len(uidx), self._n_items
        k = min(n, I)
        ids = np.full((B, k), -1, dtype=np.int64)
        out_scores = np.full((B, k), -np.inf, dtype=np.float32)
        counts = np.zeros(B, dtype=np.int64)
        chunk = max(1, min(B, _CHUNK_BYTES // max(1, 4 * I)))
        qs = ffi.new("shelf_query[]", chunk)
        qdt = _query_dtype()
        qv = np.frombuffer(ffi.buffer(qs), dtype=qdt)
        scores = np.empty((chunk, I), dtype=np.float32)
        sptr = ffi.from_buffer("float[]", scores)
        top = np.empty(k, dtype=np.uint32)
        tptr = ffi.from_buffer("uint32_t[]", top)
        ai, at, ats = self._addr
        for c0 in range(0, B, chunk):
            us = uidx[c0:c0 + chunk]
            m = len(us)
            a = self._seq_off[us]
            qv[:m]["user"] = us
            qv[:m]["items"] = ai + a * 4
            qv[:m]["types"] = at + a * 2
            qv[:m]["ts"] = ats + a * 8
            qv[:m]["n"] = self._seq_off[us + 1] - a
            rc = lib.shelf_model_score_many(self._m, qs, m, sptr, self._err)
            if rc:
                raise error(rc, ffi.string(self._err.msg).decode("utf-8", "replace"))
            if filter_already_liked:
                st, ln = self._ui_off[us], self._ui_off[us + 1] - self._ui_off[us]
                rows = np.repeat(np.arange(m), ln)
                pos = np.arange(ln.sum()) - np.repeat(np.cumsum(ln) - ln, ln) + np.repeat(st, ln)
                scores[rows, self._ui_col[pos]] = -np.inf
            if excl is not None:
                scores[:m, excl] = -np.inf
            for r in range(m):
                cnt = lib.shelf_topk(sptr + r * I, I, ffi.NULL, k, tptr)
                ids[c0 + r, :cnt] = top[:cnt]
                out_scores[c0 + r, :cnt] = scores[r, top[:cnt]]
                counts[c0 + r] = cnt
        if self._data.items_by_index:
            return ids, out_scores
        names = np.full((B, k), None, dtype=object)
        full = ids >= 0
        names[full] = self._data.item_ids(ids[full])
        return names, out_scores

    def similar_items(self, item, n=10):
        """The n items that go best with item (not itself), as (ids,
        scores): the model's score of a one-item history where it can
        (ease, itemknn, als, bpr, transformer), else the cosine of its item
        vectors."""
        self._fitted()
        i = self._data.item_index(item)
        caps = self.caps
        if caps & CAP_SIMILAR:
            scores = self.score(history=[item])
        elif caps & CAP_ITEM_VECTORS:
            V = self.item_factors
            norm = np.linalg.norm(V, axis=1)
            norm[norm == 0] = 1
            scores = (V @ V[i] / (norm * norm[i])).astype(np.float32)
        else:
            raise InvalidArgument(-3, "similar_items: model %s cannot tell which items go together (it scores "
                                      "no one-item history and has no item vectors)" % self.name)
        scores[i] = -np.inf
        top = np.empty(min(n, self._n_items), dtype=np.uint32)
        k = lib.shelf_topk(ffi.from_buffer("float[]", scores), self._n_items, ffi.NULL, len(top),
                           ffi.from_buffer("uint32_t[]", top))
        top = top[:k]
        return self._data.item_ids(top), scores[top]

    @property
    def item_factors(self):
        """The model's item vectors (n_items x dim copy), for models with them."""
        self._fitted()
        f = self._m.vt.item_vectors
        if f == ffi.NULL:
            raise InvalidArgument(-3, "%s has no item vectors" % self.name)
        dim = ffi.new("uint32_t *")
        p = f(self._m, dim)
        return np.frombuffer(ffi.buffer(p, self._n_items * dim[0] * 4), dtype=np.float32).reshape(
            self._n_items, dim[0]).copy()

    def explain(self, user, item):
        """Why item scores high for user (shelf_model_explain): a Reason
        (item: the history item behind it or None, weight, text)."""
        self._fitted()
        u = self._data.user_index(user)
        i = self._data.item_index(item)
        r = ffi.new("shelf_reason *")
        rc = lib.shelf_model_explain(self._m, self._query(u), i, r, self._err)
        if rc:
            raise error(rc, ffi.string(self._err.msg).decode("utf-8", "replace"))
        text = ffi.string(r.text).decode("utf-8", "replace")
        hist = None
        if r.item != NONE:
            hist = self._data.item_ids(np.array([r.item]))[0]
            hist = hist.item() if isinstance(hist, np.generic) else hist
            # the library names the item by its dense index; the caller knows it by its id
            text = text.replace("item %d" % r.item, "item %s" % hist)
        return Reason(hist, float(r.weight), text)


# implicit-style names of options, by model (also taken by Model(name, ...))
_ALIASES = {
    "itemknn": {"K": "knn-neighbours", "k": "knn-neighbours"},
    "ease": {"l2": "ease-lambda", "regularization": "ease-lambda"},
    "als": {"regularization": "als-reg", "iterations": "als-iters"},
    "bpr": {"learning_rate": "bpr-lr", "regularization": "bpr-reg", "iterations": "bpr-epochs"},
    "transformer": {"learning_rate": "tf-lr", "factors": "tf-dim", "iterations": "tf-epochs"},
}


def _query_dtype():
    f = dict(ffi.typeof("shelf_query").fields)
    names = ["user", "items", "types", "ts", "n", "now", "ctx", "n_ctx"]
    fmts = [np.uint32, np.uint64, np.uint64, np.uint64, np.uint32, np.int64, np.uint64, np.uint32]
    return np.dtype({"names": names, "formats": fmts, "offsets": [f[k].offset for k in names],
                     "itemsize": ffi.sizeof("shelf_query")})


class Pop(Model):
    """Popularity (pop): half_life (pop-half-life, a duration), count."""
    name = "pop"


class ItemKNN(Model):
    """Item-kNN (itemknn): K (knn-neighbours; 0: all), shrink, weight,
    recency."""
    name = "itemknn"


class EASE(Model):
    """EASE (ease): l2 (ease-lambda), recency, max_mb."""
    name = "ease"


class ALS(Model):
    """Implicit ALS (als): factors, regularization (als-reg), alpha,
    iterations (als-iters), cg_steps, conf."""
    name = "als"


class BPR(Model):
    """BPR (bpr): factors, learning_rate (bpr-lr), regularization (bpr-reg),
    iterations (bpr-epochs), neg, bias."""
    name = "bpr"


class Transformer(Model):
    """The SASRec-style transformer (transformer): layers, heads, dim,
    maxlen, epochs, batch, lr, ... (tf-*). fit(sequences) takes a list of
    item-id lists, oldest first."""
    name = "transformer"


__all__ = ["Model", "Pop", "ItemKNN", "EASE", "ALS", "BPR", "Transformer", "Reason", "UnknownId",
           "model_names", "model_options"]
