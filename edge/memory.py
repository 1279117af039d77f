"""Handing freed heap back to the system (glibc), for a process that runs for months."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from collections.abc import Callable


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, looked up once: ``find_library`` runs ``ldconfig`` each time."""
    name = ctypes.util.find_library("c")
    return getattr(ctypes.CDLL(name), "malloc_trim", None) if name else None


def return_freed_memory() -> None:
    """``malloc_trim(0)``: give the pages of freed heap chunks back (a no-op without glibc).

    glibc keeps freed memory for reuse, but the large blocks that come next (an inference
    arena, a decoder's frames) are mapped apart and never reuse it: without a trim, memory freed
    once (a model's load-time copies, a dropped camera's decoder) stays in RSS for good.
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
