"""conftest.py: fixtures of the shelf Python tests: the `shelf` binary (for
comparisons with the CLI), a deterministic MovieLens-100k-format fixture,
and a small store. Run through tests/integration/test_python.sh, which sets
SHELF_LIB (the library) and SHELF_BIN (the CLI of the same build)."""
import os
import pathlib
import shutil

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def write_ml100k(path, n_users=150, n_items=300, seed=20240501):
    """u.data lines "user<TAB>item<TAB>rating<TAB>ts" (1-based ids, ratings
    1..5), a Zipf-like item popularity and per-user tastes: deterministic for
    a seed (numpy's PCG64 is stable across versions)."""
    rng = np.random.default_rng(seed)
    pop = 1.0 / np.arange(1, n_items + 1) ** 0.9
    groups = rng.integers(0, 6, n_items)
    lines = []
    for u in range(1, n_users + 1):
        g = rng.integers(0, 6)
        p = pop * np.where(groups == g, 6.0, 1.0)
        p /= p.sum()
        n = int(rng.integers(4, 45))
        items = rng.choice(n_items, size=n, replace=False, p=p) + 1
        ts = np.sort(rng.integers(874_000_000, 893_000_000, n))
        for it, t in zip(items.tolist(), ts.tolist()):
            lines.append("%d\t%d\t%d\t%d" % (u, it, rng.integers(1, 6), t))
    order = rng.permutation(len(lines))
    pathlib.Path(path).write_text("".join(lines[k] + "\n" for k in order))
    return path


@pytest.fixture(scope="session")
def shelf_bin():
    b = os.environ.get("SHELF_BIN")
    if b and not os.path.exists(b):
        pytest.fail("SHELF_BIN=%s does not exist" % b)
    if not b:
        lib = os.environ.get("SHELF_LIB")
        cand = pathlib.Path(lib).parent / "shelf" if lib else ROOT / "build" / "shelf"
        b = str(cand) if cand.exists() else shutil.which("shelf")
    if not b or not os.path.exists(b):
        pytest.skip("no shelf binary (set SHELF_BIN)")
    return b


@pytest.fixture(scope="session")
def ml100k(tmp_path_factory):
    return str(write_ml100k(tmp_path_factory.mktemp("ml") / "u.data"))


@pytest.fixture
def small_store():
    """A store with 3 users and 5 items whose histories are known."""
    import shelf
    st = shelf.Store(":memory:")
    st.add_events(["alice", "alice", "alice", "bob", "bob", "carol", "carol", "carol", "dave", "dave"],
                  ["apple", "pear", "fig", "apple", "kiwi", "pear", "fig", "plum", "apple", "pear"],
                  types="view", ts=np.arange(10) + 1_767_225_600)
    yield st
    st.close()
