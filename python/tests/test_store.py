"""shelf.Store: opening, importing with the CLI's options, adding events
from arrays, and the errors (the C library's messages as exceptions)."""
import numpy as np
import pytest

import shelf

CSV = ("visitor,product,event,when\n"
       "v1,p1,pv,2026-01-01T10:00:00Z\n"
       "v1,p2,buy,2026-01-01T10:05:00Z\n"
       "v2,p1,pv,2026-01-02T09:00:00Z\n"
       "v2,p3,del,2026-01-02T09:01:00Z\n")


def test_import_csv_with_map_and_type_map(tmp_path):
    (tmp_path / "ev.csv").write_text(CSV)
    with shelf.Store(":memory:") as st:
        r = st.import_csv(str(tmp_path / "ev.csv"), map="user=visitor,item=product,type=event,ts=when",
                          type_map="pv=view,buy=purchase,del=-")
        assert (r["n_lines"], r["n_events"], r["n_dropped"], r["n_new_users"]) == (4, 3, 1, 2)
        assert st.stats()["types"]["purchase"] == 1 and st.stats()["types"]["view"] == 2
        assert [st.user_id(0), st.item_id(1)] == ["v1", "p2"]
        # the same bytes again: idempotent, nothing read
        assert st.import_csv(str(tmp_path / "ev.csv"), map="user=visitor,item=product,type=event,ts=when",
                             type_map="pv=view,buy=purchase,del=-")["already_imported"]


def test_import_csv_without_header_columns_and_delimiter(tmp_path):
    (tmp_path / "ev.tsv").write_text("u1\ti1\t100\nu2\ti1\t200\nu2\ti2\t300\n")
    st = shelf.Store()
    r = st.import_csv(str(tmp_path / "ev.tsv"), columns="user,item,ts", delimiter="\\t", type="click")
    assert r["n_events"] == 3 and r["n_default_type"] == 3
    assert st.stats()["types"]["click"] == 3 and st.stats()["ts_max"] == 300


def test_import_errors_carry_the_c_message(tmp_path):
    (tmp_path / "bad.csv").write_text("user,item,ts\nu1,i1,100\nu2,i2,soon\n")
    st = shelf.Store()
    with pytest.raises(shelf.InvalidArgument, match=r"bad.csv:3: field 3 \(ts\): not a timestamp") as e:
        st.import_csv(str(tmp_path / "bad.csv"))
    assert e.value.name == "EFORMAT" and e.value.code == -7
    assert st.n_users == 0  # nothing of the file stored
    with pytest.raises(shelf.NotFound, match="missing.csv: no such file"):
        st.import_csv(str(tmp_path / "missing.csv"))
    (tmp_path / "ev.csv").write_text(CSV)
    with pytest.raises(shelf.InvalidArgument, match="nope"):
        st.import_csv(str(tmp_path / "ev.csv"), map="nope=visitor")
    with pytest.raises(TypeError, match="unknown option 'mapp'.*type_map"):
        st.import_csv(str(tmp_path / "ev.csv"), mapp="user=visitor")
    with pytest.raises(shelf.InvalidArgument, match="unknown format 'xls'"):
        st.import_file(str(tmp_path / "ev.csv"), "xls")
    with pytest.raises(shelf.InvalidArgument, match="delimiter"):
        st.import_csv(str(tmp_path / "ev.csv"), delimiter=";;")


def test_add_events_ids_types_times():
    st = shelf.Store()
    n = st.add_events(np.array([10, 10, 20]), ["a", "b", "a"], types=["view", "purchase", "cart"],
                      ts=np.array(["2026-01-01T00:00:00", "2026-01-01T00:01:00", "2026-01-02T00:00:00"],
                                  dtype="datetime64[s]"), values=[0, 2, 1])
    assert n == 3
    assert (st.n_users, st.n_items) == (2, 2)
    assert [st.user_id(0), st.user_id(1)] == ["10", "20"]  # integers become their decimal ids
    s = st.stats()
    assert s["types"]["purchase"] == 1 and s["ts_min"] == 1767225600
    # new ids get indices in order of first appearance
    st.add_events(["zed", "amy"], ["c", "c"])
    assert [st.user_id(2), st.user_id(3)] == ["zed", "amy"]


def test_add_events_is_one_transaction():
    st = shelf.Store()
    st.add_events(["u"], ["i"])
    with pytest.raises(shelf.NotFound, match="unknown event type 'teleport'"):
        st.add_events(["u", "v"], ["i", "j"], types=["view", "teleport"])
    with pytest.raises(ValueError, match="2 user ids but 1 item ids"):
        st.add_events(["u", "v"], ["i"])
    with pytest.raises(TypeError, match="ts must be integers"):
        st.add_events(["u"], ["i"], ts=[1.5])
    with pytest.raises(shelf.InvalidArgument, match="empty user id"):
        st.add_events(["u", ""], ["i", "j"])
    assert (st.n_users, st.n_items, st.stats()["n_events"]) == (1, 1, 1)


def test_file_store_persists(tmp_path):
    path = str(tmp_path / "shop.db")
    with shelf.Store(path) as st:
        st.add_events(["u1", "u2"], ["i1", "i1"], ts=[5, 6])
    with shelf.Store(path, readonly=True) as st:
        assert (st.n_users, st.n_items) == (2, 1)
    with pytest.raises(shelf.ShelfError, match="cannot open store") as e:
        shelf.Store(str(tmp_path / "no" / "such" / "dir.db"))
    assert e.value.name == "ESTORE"
    st = shelf.Store()
    st.close()
    with pytest.raises(ValueError, match="closed"):
        st.n_users
