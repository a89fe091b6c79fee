"""The cffi declarations agree with the C headers: generated from them
(and not stale), with the compiler's sizes and offsets where a compiler is
at hand, and values written by C read back right through them."""
import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest

import shelf
from shelf import ffi, lib

ROOT = pathlib.Path(__file__).resolve().parents[2]
HAVE_HEADERS = (ROOT / "include" / "shelf" / "shelf.h").exists()


@pytest.mark.skipif(not HAVE_HEADERS, reason="no include/ beside the package")
def test_cdef_is_generated_from_the_headers():
    r = subprocess.run([sys.executable, str(ROOT / "python" / "tools" / "gen_cdef.py"), "--check"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_every_declared_function_is_exported():
    import re
    from shelf._cdef import CDEF
    names = set(re.findall(r"\b(shelf_[a-z0-9_]+)\s*\(", CDEF))
    assert len(names) > 150
    missing = [n for n in sorted(names) if not hasattr(lib, n)]
    assert missing == []


def _structs():
    typedefs, structs, _ = ffi.list_types()
    out = []
    for t in typedefs:
        ct = ffi.typeof(t)
        if ct.kind == "struct" and ct.fields is not None:
            out.append(t)
    return out


@pytest.mark.skipif(not HAVE_HEADERS or not shutil.which("cc"), reason="needs the headers and a C compiler")
def test_sizes_and_offsets_match_the_compiler(tmp_path):
    lines = ['#include <stdio.h>', '#include <stddef.h>', '#include "shelf/shelf.h"', "int main(void) {"]
    want = {}
    for t in _structs():
        lines.append('printf("%s %%zu\\n", sizeof(%s));' % (t, t))
        want[t] = ffi.sizeof(t)
        for fname, f in ffi.typeof(t).fields:
            lines.append('printf("%s.%s %%zu\\n", offsetof(%s, %s));' % (t, fname, t, fname))
            want["%s.%s" % (t, fname)] = f.offset
    lines.append("return 0; }")
    src = tmp_path / "layout.c"
    src.write_text("\n".join(lines))
    exe = tmp_path / "layout"
    subprocess.run(["cc", "-std=c11", "-I", str(ROOT / "include"), str(src), "-o", str(exe)], check=True)
    got = dict(l.split() for l in subprocess.run([str(exe)], capture_output=True, text=True,
                                                  check=True).stdout.splitlines())
    assert len(want) > 100
    bad = {k: (v, int(got[k])) for k, v in want.items() if int(got[k]) != v}
    assert bad == {}


def test_import_opts_written_by_c():
    o = ffi.new("shelf_import_opts *")
    o.delimiter = b";"
    lib.shelf_import_opts_init(o, lib.SHELF_FMT_ML100K)
    assert o.format == lib.SHELF_FMT_ML100K
    assert o.what == lib.SHELF_IMPORT_EVENTS
    assert ffi.string(o.event_type) == b"view"
    assert o.delimiter == b"\0" and o.allow_duplicates == 0 and o.mapping == ffi.NULL


def test_eval_opts_written_by_c():
    o = ffi.new("shelf_eval_opts *")
    lib.shelf_eval_opts_init(o)
    assert o.protocol == lib.SHELF_PROTO_LOO_FULL
    assert [o.ks[i] for i in range(o.n_ks)] == [5, 10, 20]
    assert o.seed == 42 and o.valid == 0 and o.scenario == ffi.NULL and o.n_peers == 0


def test_gen_opts_written_by_c():
    o = ffi.new("shelf_gen_opts *")
    lib.shelf_gen_opts_init(o)
    assert (o.seed, o.n_users, o.n_items, o.n_events) == (42, 200, 100, 5000)
    assert (o.n_categories, o.n_brands, o.n_factors, o.days) == (8, 20, 16, 30)
    assert o.zipf == 1.0 and abs(o.late_items - 0.2) < 1e-12
    assert o.start_ts == 1767225600  # 2026-01-01


def test_err_written_by_c():
    e = ffi.new("shelf_err *")
    assert lib.shelf_err_set(e, lib.SHELF_ERANGE, b"field %s at line %d", ffi.new("char[]", b"ts"),
                             ffi.cast("int", 12)) == lib.SHELF_ERANGE
    assert e.code == -8 and ffi.string(e.msg) == b"field ts at line 12"
    assert ffi.string(lib.shelf_errmsg(e)) == b"field ts at line 12"


def test_store_stats_and_snapshot_written_by_c():
    """A generated shop: the stats struct (2.7 kB, arrays inside) and the
    snapshot (pointer fields) read through the declarations agree with each
    other and with the generator's options."""
    st = shelf.Store(":memory:")
    o = ffi.new("shelf_gen_opts *")
    lib.shelf_gen_opts_init(o)
    assert lib.shelf_gen_store(st.handle, o) == 0
    s = st.stats()
    assert (s["n_users"], s["n_items"], s["n_events"]) == (200, 100, 5000)
    assert sum(s["types"].values()) == 5000 and "purchase" in s["types"]
    assert s["ts_min"] >= 1767225600 and s["seq_max"] >= s["seq_p99"] >= s["seq_p50"] >= s["seq_min"]
    snap = st.snapshot()
    p = snap.ptr
    assert (p.n_users, p.n_items, p.n_events) == (200, 100, 5000)
    assert snap.seq_off[-1] == 5000 and snap.ui_off[-1] == p.n_nnz == s["n_pairs"]
    assert snap.user_ids[:3] == ["u0", "u1", "u2"] and snap.item_ids[-1] == "i99"
    ts = np.frombuffer(ffi.buffer(p.seq_ts, 5000 * 8), dtype=np.int64)
    assert ts.min() == s["ts_min"] and ts.max() == s["ts_max"]
    names = {ffi.string(p.type_name + p.type_name_off[t]).decode(): p.type_weight[t] for t in range(p.n_types)}
    assert names["view"] == 1.0 and names["purchase"] == 5.0 and names["dislike"] == -2.0
    st.close()


def test_model_head_written_by_c(small_store):
    m = shelf.models.Pop().fit(small_store)
    assert m._m.n_users == 4 and m._m.n_items == 5 and m._m.fitted == 1
    assert ffi.string(m._m.vt.name) == b"pop"


def test_library_lookup_error_names_what_was_tried(tmp_path):
    env = dict(os.environ, SHELF_LIB=str(tmp_path / "nowhere" / "libshelf.so"),
               PYTHONPATH=str(pathlib.Path(shelf.__file__).resolve().parents[1]))
    r = subprocess.run([sys.executable, "-c", "import shelf"], env=env, capture_output=True, text=True,
                       cwd=str(tmp_path))
    assert r.returncode != 0
    assert "cannot find libshelf.so" in r.stderr and "nowhere/libshelf.so does not exist" in r.stderr
    assert "SHELF_LIB" in r.stderr
