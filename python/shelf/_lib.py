"""_lib.py: finds and opens libshelf.so through cffi in ABI mode (no
compiler at install time), and turns the library's negative status codes
into Python exceptions that carry the C message."""
import ctypes.util
import os
import pathlib

import cffi

from ._cdef import CDEF

ffi = cffi.FFI()
ffi.cdef(CDEF)


def _candidates():
    """(description, path or name) in the order they are tried."""
    out = []
    env = os.environ.get("SHELF_LIB")
    if env:
        out.append(("$SHELF_LIB", env))
    # python/shelf/_lib.py -> the repository's build/libshelf.so
    repo = pathlib.Path(__file__).resolve().parents[2]
    out.append(("build dir next to the package", str(repo / "build" / "libshelf.so")))
    found = ctypes.util.find_library("shelf")
    out.append(('ctypes.util.find_library("shelf")', found))
    return out


def _open():
    tried = []
    env = os.environ.get("SHELF_LIB")
    for what, path in _candidates():
        if path is None:
            tried.append("%s: nothing found" % what)
            continue
        if what != 'ctypes.util.find_library("shelf")' and not os.path.exists(path):
            tried.append("%s: %s does not exist" % (what, path))
            if env and what == "$SHELF_LIB":
                break  # an explicit choice that is wrong is an error, not a hint
            continue
        try:
            return ffi.dlopen(path), path
        except OSError as e:
            tried.append("%s: %s: %s" % (what, path, e))
            if env and what == "$SHELF_LIB":
                break
    raise ImportError("shelf: cannot find libshelf.so; tried:\n  " + "\n  ".join(tried) +
                      "\nbuild it (cmake -S . -B build && cmake --build build) or set SHELF_LIB "
                      "to the path of libshelf.so")


lib, lib_path = _open()

NONE = 0xFFFFFFFF  # SHELF_NONE

_NAMES = {
    -1: "ENOMEM", -2: "EIO", -3: "EINVAL", -4: "ECORRUPT", -5: "ESTORE",
    -6: "ENOTFOUND", -7: "EFORMAT", -8: "ERANGE", -9: "EEXIST", -10: "EVERSION",
}


class ShelfError(Exception):
    """A libshelf call failed. code: the negative SHELF_E* status, name:
    "EINVAL"..., message: the library's message (file, line, field)."""

    def __init__(self, code, message):
        self.code = code
        self.name = _NAMES.get(code, str(code))
        self.message = message
        super().__init__(message)


class InvalidArgument(ShelfError, ValueError):
    """SHELF_EINVAL, SHELF_ERANGE, SHELF_EFORMAT: a bad option, value or record."""


class NotFound(ShelfError, LookupError):
    """SHELF_ENOTFOUND: no such id, file or name."""


class ShelfIOError(ShelfError, OSError):
    """SHELF_EIO: file or system I/O failed."""


def _class_of(code):
    if code in (-3, -7, -8):
        return InvalidArgument
    if code == -6:
        return NotFound
    if code == -2:
        return ShelfIOError
    return ShelfError


def error(code, message):
    """The exception for status code with message (the code's text when the
    message is empty)."""
    if not message:
        message = ffi.string(lib.shelf_strerror(code)).decode("utf-8", "replace")
    return _class_of(code)(code, message)


def cstr(p):
    """Python str of a const char * (None for NULL)."""
    return None if p == ffi.NULL else ffi.string(p).decode("utf-8", "replace")


def check_err(rc, err):
    """Raises for a negative rc with the message of shelf_err *err."""
    if rc < 0:
        raise error(rc, ffi.string(err.msg).decode("utf-8", "replace") if err is not None else "")
    return rc
