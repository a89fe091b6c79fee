"""shelf: Python bindings of libshelf, the shelf recommendation engine, over
its C ABI (cffi, ABI mode: no compiler needed). The library is found
through $SHELF_LIB, the repository's build/libshelf.so, or the system's
(ctypes.util.find_library("shelf")).

    import shelf
    st = shelf.Store(":memory:")
    st.add_events(["u1", "u1", "u2"], ["a", "b", "a"])
    m = shelf.models.EASE(l2=100).fit(st)
    ids, scores = m.recommend("u2", n=5)
    shelf.evaluate("ease", "u.data", format="ml100k", k=[10, 20])
"""
from . import models
from ._data import UnknownId
from ._lib import InvalidArgument, NotFound, ShelfError, ShelfIOError, ffi, lib, lib_path
from .evaluate import evaluate
from .store import Snapshot, Store

__version__ = "0.1.0"


def library_version():
    """SHELF_VERSION of the loaded library is not in the ABI; the path is."""
    return lib_path


__all__ = ["Store", "Snapshot", "models", "evaluate", "ShelfError", "InvalidArgument", "NotFound", "ShelfIOError",
           "UnknownId", "ffi", "lib", "lib_path"]
