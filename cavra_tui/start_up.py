"""Start-up without cyclic garbage collection.

Starting makes many objects that live as long as the process (modules, classes, pydantic
schemas, SQLAlchemy's caches) and little garbage. Python's collector still scans them, again
and again as they pile up: about 100 ms of a quick command's ~300. So collection is off while
the store loads and the runtime is built; then what start-up made is frozen out of later
collections (once per process) and collection resumes as it was.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def without_collection() -> Iterator[None]:
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if gc.get_freeze_count() == 0:
            gc.freeze()
        if collecting:
            gc.enable()
