"""evaluate.py: shelf.evaluate, the numbers of `shelf eval --json` for one
model, built the way cli/eval.c builds them: the data into a snapshot, the
protocol's split, the model fitted on its training part (watching the
validation targets), shelf_eval_run."""
import math
import os

import numpy as np

from ._data import Data, as_data
from ._lib import InvalidArgument, cstr, error, ffi, lib
from .models import Model
from .store import Store, _IMPORT_KEYS

# eval options that are rows of the configuration table (as the CLI's flags)
_EVAL_ROWS = {"seed": "seed", "cold_fill": "cold-fill", "temporal_test": "temporal-test",
              "cold_share": "cold-share"}
_PROTOCOLS = {"loo": "loo-full", "loo-full": "loo-full", "loo-s100": "loo-s100", "temporal": "temporal",
              "cold-item": "cold-item"}


def _metric_names():
    return [cstr(lib.shelf_metric_name(k)) for k in range(lib.SHELF_M_COUNT)]


def _params(cfg, name):
    """cli/eval.c's params_json: the model's rows, durations in seconds."""
    n = ffi.new("size_t *")
    t = lib.shelf_model_options(name.encode(), n)
    out = {}
    for k in range(n[0]):
        row, typ = cstr(t[k].name), t[k].type
        if typ == lib.SHELF_CFG_INT:
            out[row] = cfg.get(row, "int")
        elif typ in (lib.SHELF_CFG_DOUBLE, lib.SHELF_CFG_DURATION):
            out[row] = cfg.get(row, "double")
        elif typ == lib.SHELF_CFG_BOOL:
            out[row] = cfg.get(row, "bool")
        else:
            v = cfg.get(row, "string")
            if v is not None:
                out[row] = v
    return out


def _snapshot(data, fmt, import_opts):
    """(Data, label) for data: a path to import (with format) into an
    in-memory store, or what Model.fit takes."""
    if isinstance(data, (str, bytes, os.PathLike)):
        path = os.fspath(data)
        if fmt is None:
            raise TypeError("evaluate: data %r is a file: give its format= (s3rec|pairs|csv|jsonl|ml100k|taobao)"
                            % path)
        st = Store(":memory:")
        st.import_file(path, fmt, **import_opts)
        return Data(st.snapshot(), False, False, keep=st), path
    if import_opts:
        raise TypeError("evaluate: import options %s need data to be a file" % ", ".join(import_opts))
    return as_data(data), getattr(data, "path", type(data).__name__)


def _split(s, protocol, cfg, valid):
    err = ffi.new("shelf_err *")
    out = ffi.new("shelf_split **")
    p = s.ptr
    if protocol == "temporal":
        n = int(p.n_events)
        ts = np.frombuffer(ffi.buffer(p.seq_ts, n * 8), dtype=np.int64) if n else np.zeros(0, np.int64)
        span = int(cfg.get("temporal-test", "double"))
        if n == 0 or ts.max() <= 0:
            raise InvalidArgument(-3, "the temporal protocol needs timestamps (this data has none)")
        hi = int(ts.max())
        rc = lib.shelf_split_temporal(p, hi - 2 * span + 1, hi - span + 1, out, err)
    elif protocol == "cold-item":
        rc = lib.shelf_split_cold_items(p, cfg.get("cold-share", "double"), cfg.get("seed", "int"), out, err)
    else:
        rc = lib.shelf_split_loo(p, out, err)
    if rc:
        raise error(rc, ffi.string(err.msg).decode("utf-8", "replace"))
    sp = ffi.gc(out[0], lib.shelf_split_free)
    off = sp.valid_off if valid else sp.test_off
    U = int(sp.train.n_users)
    o = np.frombuffer(ffi.buffer(off, (U + 1) * 8), dtype=np.uint64) if off != ffi.NULL and U else np.zeros(1)
    if not (np.diff(o) > 0).any():
        what = "validation" if valid else "test"
        raise InvalidArgument(-3, "%s: no user has a %s target: %d users, %d events" % (
            protocol, what, s.n_users, s.n_events))
    return sp


def evaluate(model_or_name, data, protocol="loo", k=(10, 20), valid=False, format=None, threads=0, **opts):
    """Fits a model on the training part of a split of data and measures it:
    the numbers `shelf eval --json` writes for that model.

    model_or_name: a Model (its options are used; the instance itself is
    not fitted) or a model name. data: a shelf.Store, a scipy.sparse user x
    item matrix, a list of item sequences, or a file path with format=
    (ml100k, csv, ...) imported into an in-memory store as `shelf eval
    --data FILE --format F` does. protocol: loo (= loo-full), loo-s100,
    temporal, cold-item. k: cut-offs, ascending, each <= 20. valid:
    validation targets instead of test. opts: seed, cold_fill,
    temporal_test, cold_share; import options when data is a file (map,
    columns, type_map, ...); model options when a name is given.

    Returns {"model", "protocol", "targets", "users" (evaluated),
    "fit_seconds", "score_seconds", "metrics" {"ndcg@10": ...}, "params",
    "data" {"users", "items", "events"}}; NaN where the CLI writes null."""
    proto = _PROTOCOLS.get(protocol)
    if proto is None:
        raise InvalidArgument(-3, "evaluate: unknown protocol %r (one of %s)" % (protocol, "|".join(_PROTOCOLS)))
    eval_rows = {_EVAL_ROWS[key]: opts.pop(key) for key in list(opts) if key in _EVAL_ROWS}
    import_opts = {key: opts.pop(key) for key in list(opts) if key.replace("-", "_") in _IMPORT_KEYS}
    if isinstance(model_or_name, Model):
        if opts:
            raise TypeError("evaluate: unknown options %s (set model options on the model)" % ", ".join(opts))
        model = Model(model_or_name.name, **model_or_name.options)
    elif isinstance(model_or_name, str):
        model = Model(model_or_name, **opts)
    else:
        raise TypeError("evaluate: want a shelf.models.Model or a model name, not %r" % (model_or_name,))
    cfg = model._cfg
    for row, v in eval_rows.items():
        cfg.set(row, v, origin=row)
    name = model.name

    eo = ffi.new("shelf_eval_opts *")
    lib.shelf_eval_opts_init(eo)
    ks = [int(x) for x in np.atleast_1d(k)]
    if not ks or len(ks) > lib.SHELF_EVAL_MAX_K or any(x < 1 or x > lib.SHELF_EVAL_TOPK for x in ks) or \
            any(b <= a for a, b in zip(ks, ks[1:])):
        raise InvalidArgument(-3, "evaluate: k wants ascending cut-offs in 1..%d, at most %d of them, not %r" % (
            lib.SHELF_EVAL_TOPK, lib.SHELF_EVAL_MAX_K, k))
    for i, x in enumerate(ks):
        eo.ks[i] = x
    eo.n_ks = len(ks)
    pr = ffi.new("shelf_protocol *")
    lib.shelf_protocol_parse(proto.encode(), pr)
    eo.protocol = pr[0]
    eo.valid = 1 if valid else 0
    eo.seed = cfg.get("seed", "int")
    eo.threads = int(threads)
    eo.cold_fill = cfg.get("cold-fill", "int")

    d, label = _snapshot(data, format, import_opts)
    sp = _split(d.snap, proto, cfg, valid)

    err = ffi.new("shelf_err *")
    out = ffi.new("shelf_model **")
    rc = lib.shelf_model_new(name.encode(), out, err)
    if rc:
        raise error(rc, ffi.string(err.msg).decode("utf-8", "replace"))
    m = ffi.gc(out[0], lib.shelf_model_free)
    cold_fill = proto == "cold-item" and eo.cold_fill
    if sp.n_valid and not cold_fill:
        lib.shelf_model_set_valid(m, sp.valid_off, sp.valid_item)
    t0 = lib.shelf_now()
    rc = lib.shelf_model_fit(m, sp.train, cfg.ptr, ffi.NULL)
    fit_s = lib.shelf_now() - t0
    if rc:
        raise error(rc, cstr(lib.shelf_model_errmsg(m)))

    dim = ffi.new("uint32_t *")
    vecs = m.vt.item_vectors(m, dim) if m.vt.item_vectors != ffi.NULL else ffi.NULL
    res = ffi.new("shelf_eval_result **")
    rc = lib.shelf_eval_run(m, sp, eo, vecs, dim[0] if vecs != ffi.NULL else 0, res, err)
    if rc:
        raise error(rc, "%s: %s" % (name, ffi.string(err.msg).decode("utf-8", "replace")))
    r = ffi.gc(res[0], lib.shelf_eval_result_free)

    names = _metric_names()
    metrics = {}
    for i in range(r.n_ks):
        K = r.ks[i]
        for j, mn in enumerate(names):
            metrics["%s@%d" % (mn, K)] = float(r.mean[i][j])
        metrics["coverage@%d" % K] = float(r.coverage[i])
        metrics["gini@%d" % K] = float(r.gini[i])
        metrics["novelty@%d" % K] = float(r.novelty[i])
        metrics["ild_category@%d" % K] = float(r.ild_category[i])
        metrics["avg_popularity@%d" % K] = float(r.avg_pop[i])
        metrics["long_tail@%d" % K] = float(r.long_tail[i])
    return {
        "model": name,
        "protocol": proto,
        "targets": "valid" if valid else "test",
        "users": int(r.n_eval),
        "fit_seconds": fit_s,
        "score_seconds": float(r.score_seconds),
        "metrics": metrics,
        "params": _params(cfg, name),
        "data": {"source": label, "users": d.n_users, "items": d.n_items, "events": d.snap.n_events},
    }


def isclose_metrics(a, b, tol=1e-6):
    """True when two metrics dicts hold the same keys and numbers (NaN equals
    NaN and the CLI's null)."""
    if set(a) != set(b):
        return False
    for key in a:
        x = float("nan") if a[key] is None else a[key]
        y = float("nan") if b[key] is None else b[key]
        if not ((math.isnan(x) and math.isnan(y)) or abs(x - y) <= tol):
            return False
    return True
