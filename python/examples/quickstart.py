"""quickstart.py: shelf from Python in a notebook's few cells: make a store
of events, fit EASE, recommend, evaluate. Needs libshelf.so (set SHELF_LIB
to its path if `import shelf` cannot find it)."""
import numpy as np

import shelf

# 1. events: who viewed what, when (here: 300 shoppers in 3 taste groups);
#    a real shop would call st.import_csv("events.csv", map="user=visitorid,...")
rng = np.random.default_rng(42)
users, items, ts = [], [], []
for u in range(300):
    group = u % 3
    for _ in range(rng.integers(5, 20)):
        item = 3 * rng.integers(0, 40) + group if rng.random() < 0.8 else rng.integers(0, 120)
        users.append("user%d" % u)
        items.append("sku%d" % item)
        ts.append(1_767_225_600 + len(ts) * 60)
st = shelf.Store(":memory:")  # or shelf.Store("shop.db")
st.add_events(users, items, types="view", ts=ts)
print(st)

# 2. fit EASE and recommend
model = shelf.models.EASE(l2=50)
model.fit(st)
ids, scores = model.recommend("user7", n=5)
print("user7 ->", list(zip(ids, np.round(scores, 3))))
batch_ids, _ = model.recommend(["user0", "user1", "user2"], n=3)  # one row per user
print("batch ->", batch_ids.tolist())
print("like sku4:", model.similar_items("sku4", n=3)[0].tolist())
print("why", ids[0], "->", model.explain("user7", ids[0]).text)

# 3. evaluate: leave-one-out, as `shelf eval` (the same numbers)
for name in ("pop", "itemknn", "ease"):
    r = shelf.evaluate(name, st, protocol="loo", k=[10, 20])
    print("%-8s NDCG@10 %.4f  HR@20 %.4f  (%d users)" % (name, r["metrics"]["ndcg@10"], r["metrics"]["hr@20"],
                                                        r["users"]))
