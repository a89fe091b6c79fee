"""shelf.models: fit on a store, a scipy matrix or sequences; recommend
(one user, a batch, an anonymous history), similar_items, explain; the
errors for bad names, options and ids."""
import numpy as np
import pytest
import scipy.sparse as sps

import shelf
from shelf.models import ALS, BPR, EASE, ItemKNN, Model, Pop, Transformer


def _shop(n_users=80, n_items=60, seed=3):
    """Users in 3 taste groups, each mostly viewing its group's items."""
    rng = np.random.default_rng(seed)
    users, items, ts = [], [], []
    for u in range(n_users):
        g = u % 3
        for k in range(int(rng.integers(5, 15))):
            i = int(rng.integers(0, n_items // 3)) * 3 + g if rng.random() < 0.85 else int(rng.integers(0, n_items))
            users.append("u%d" % u)
            items.append("i%d" % i)
            ts.append(1_767_225_600 + 60 * len(ts))
    st = shelf.Store()
    st.add_events(users, items, ts=ts)
    return st


@pytest.fixture(scope="module")
def shop():
    st = _shop()
    yield st
    st.close()


def test_ease_on_a_store_returns_store_ids(small_store):
    m = EASE(l2=1.0).fit(small_store)
    ids, scores = m.recommend("bob", n=3)
    assert ids.dtype == object and scores.dtype == np.float32
    assert "apple" not in ids and "kiwi" not in ids  # bob's history is filtered
    assert set(ids) <= {"pear", "fig", "plum"} and len(ids) == 3
    assert np.all(np.diff(scores) <= 0)
    # pear goes with apple (alice, dave): it leads bob's list
    assert ids[0] == "pear"
    ids2, _ = m.recommend("bob", n=5, filter_already_liked=False)
    assert len(ids2) == 5 and "apple" in ids2
    ids3, _ = m.recommend("bob", n=5, filter_items=["pear"])
    assert list(ids3) == ["fig", "plum"]
    assert m.n_users == 4 and list(m.item_ids) == ["apple", "pear", "fig", "kiwi", "plum"]


def test_batch_equals_one_by_one(shop):
    m = EASE(l2=20).fit(shop)
    users = ["u%d" % k for k in range(0, 80, 7)]
    ids, scores = m.recommend(np.array(users), n=8)
    assert ids.shape == (len(users), 8)
    for r, u in enumerate(users):
        i1, s1 = m.recommend(u, n=8)
        assert list(ids[r]) == list(i1)
        np.testing.assert_allclose(scores[r], s1, rtol=1e-6)


def test_recommendations_follow_the_taste_groups(shop):
    for model in (EASE(l2=10), ItemKNN(shrink=10), ALS(factors=8, iterations=5, seed=1)):
        model.fit(shop)
        ids, _ = model.recommend(["u0", "u1", "u2"], n=5)
        for g in range(3):
            hits = sum(int(i[1:]) % 3 == g for i in ids[g])
            assert hits >= 3, (model, g, ids[g])


def test_matrix_fit_uses_row_and_column_indices():
    rng = np.random.default_rng(0)
    X = sps.random(30, 20, density=0.2, random_state=1, format="csr")
    X.data[:] = 1
    m = EASE(l2=5, recency=0).fit(X)
    assert (m.n_users, m.n_items) == (30, 20)
    ids, scores = m.recommend(4, n=20)
    assert ids.dtype.kind == "i"
    assert not set(ids) & set(X[4].indices)  # liked items filtered
    assert len(ids) == 20 - X[4].nnz
    # the same scores as EASE in numpy: B = P / -diag(P) off the diagonal, P = (X'X + l2 I)^-1
    G = (X.T @ X).toarray() + 5 * np.eye(20)
    P = np.linalg.inv(G)
    B = P / -np.diag(P)
    np.fill_diagonal(B, 0)
    want = X[4].toarray()[0] @ B
    np.testing.assert_allclose(scores, want[ids], rtol=1e-3, atol=1e-5)
    assert rng is not None


def test_matrix_values_are_event_weights():
    X = sps.csr_matrix(np.array([[1, 0, 3], [0, 2, 0], [5, 0, 0]], dtype=float))
    m = Pop(count="weights").fit(X)
    ids, scores = m.recommend(1, n=3, filter_already_liked=False)
    assert list(ids) == [0, 2, 1]  # item 0 weighs 1 + 5, item 2 weighs 3, item 1 2
    assert list(Pop().fit(X).recommend(1, n=3, filter_already_liked=False)[0]) == [0, 1, 2]  # pairs: 2, 1, 1
    big = sps.random(50, 50, density=0.5, random_state=2, format="csr")
    with pytest.raises(shelf.InvalidArgument, match="distinct values.*binarize"):
        Pop().fit(big)


def test_anonymous_history_and_similar_items(small_store):
    m = ItemKNN(shrink=0).fit(small_store)
    ids, _ = m.recommend(None, history=["apple"], n=2)
    assert ids[0] == "pear" and "apple" not in ids
    sim, s = m.similar_items("fig", n=2)
    assert set(sim) == {"pear", "plum"} and np.all(s > 0)  # what fig was viewed with
    with pytest.raises(shelf.UnknownId, match="unknown item id 'durian'"):
        m.similar_items("durian")
    with pytest.raises(shelf.InvalidArgument, match="similar_items: model pop"):
        Pop().fit(small_store).similar_items("fig")


def test_explain_names_the_history_item(small_store):
    m = EASE(l2=1.0).fit(small_store)
    r = m.explain("bob", "pear")
    assert r.item == "apple" and r.weight > 0 and "apple" in r.text
    with pytest.raises(shelf.InvalidArgument):
        BPR(factors=4, iterations=2).fit(small_store).explain("bob", "pear")  # no explain: EINVAL from C


def test_bad_names_options_and_ids(small_store):
    with pytest.raises(shelf.NotFound, match=r"unknown model 'nope' \(known: pop, itemknn, ease"):
        Model("nope")
    with pytest.raises(shelf.InvalidArgument, match=r"option 'ease-lambda' must be in \[0, 1e\+09\], not -1"):
        EASE(l2=-1)
    with pytest.raises(shelf.InvalidArgument, match="wants a number, not 'abc'"):
        EASE(l2="abc")
    with pytest.raises(shelf.InvalidArgument, match="unknown option 'bogus'; its options are ease-lambda"):
        EASE(bogus=1)
    with pytest.raises(shelf.InvalidArgument, match="unknown option 'als_factors'"):
        EASE(als_factors=3)  # another model's row
    m = Model("als", als_factors=4, **{"als-iters": 2}, cg_steps=1, seed=7)
    assert m.get_params()["als-factors"] == 4 and m.get_params()["als-cg-steps"] == 1
    with pytest.raises(RuntimeError, match="fit the model first"):
        m.recommend("bob")
    m.fit(small_store)
    with pytest.raises(shelf.UnknownId, match="unknown user id 'zoe'"):
        m.recommend("zoe")
    with pytest.raises(shelf.UnknownId, match="unknown user id 'zoe'"):
        m.recommend(["bob", "zoe"])
    with pytest.raises(TypeError, match="fit on"):
        m.fit("not data")
    X = sps.csr_matrix(np.eye(4))
    m.fit(X)
    with pytest.raises(shelf.UnknownId, match="user 4 is out of range: the model knows 4 users"):
        m.recommend(4)
    with pytest.raises(TypeError, match="integer indices"):
        m.recommend("bob")


def test_fit_errors_carry_the_model_message():
    with pytest.raises(shelf.InvalidArgument, match="2000 items needs 30.5 MiB.*more than ease-max-mb = 1 MiB"):
        EASE(max_mb=1).fit(sps.csr_matrix(np.ones((10, 2000))))


def test_item_factors_and_bpr(small_store):
    m = ALS(factors=6, iterations=3).fit(small_store)
    V = m.item_factors
    assert V.shape == (5, 6) and np.isfinite(V).all()
    b = BPR(factors=4, learning_rate=0.05, iterations=3).fit(small_store)
    ids, _ = b.recommend("alice", n=2)
    assert set(ids) <= {"kiwi", "plum"}


def test_transformer_on_sequences():
    seqs = [[(s + k) % 12 for k in range(8)] for s in range(40)]  # every user walks the cycle
    m = Transformer(layers=1, dim=16, maxlen=8, epochs=3, batch=16, seed=1).fit(seqs)
    assert (m.n_users, m.n_items) == (40, 12)
    ids, scores = m.recommend(0, n=3)
    assert ids.dtype.kind == "i" and len(ids) == 3 and not set(ids) & set(seqs[0])
    b, _ = m.recommend(np.arange(5), n=3)
    assert list(b[0]) == list(ids)
    s = Transformer(layers=1, dim=8, maxlen=4, epochs=1).fit([["a", "b", "c"], ["b", "c", "d"], ["c", "d", "a"]])
    assert list(s.item_ids) == ["a", "b", "c", "d"]
    assert s.recommend(None, history=["a", "b"], n=2)[0].dtype == object
