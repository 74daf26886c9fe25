"""One bounded, thread-safe cache of the most recently used entries, for results shared by the
threads of a server (the app's sessions): a parsed card per file version, a timing per input, a
figure per the arrays it is drawn from. Least recently used out first."""
from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Hashable, Iterator


class BoundedCache:
    """``get`` / ``put`` / ``clear`` under one lock; at most ``max_entries`` kept."""

    def __init__(self, max_entries: int):
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.max_entries = max_entries
        self._items: "OrderedDict[Hashable, Any]" = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, default: Any = None) -> Any:
        with self._lock:
            if key not in self._items:
                return default
            self._items.move_to_end(key)
            return self._items[key]

    def put(self, key: Hashable, value: Any) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.max_entries:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._items

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def __iter__(self) -> Iterator[Hashable]:
        with self._lock:
            return iter(list(self._items))


def content_key(kind: str, *parts) -> str:
    """A key for something of ``kind`` computed from ``parts``: arrays and tensors by their
    bytes, shape and type, anything else by its ``repr``."""
    import hashlib

    import numpy as np
    h = hashlib.sha256(kind.encode())
    for p in parts:
        if isinstance(p, np.ndarray) or hasattr(p, "numpy"):
            a = np.ascontiguousarray(p.detach().cpu().numpy() if hasattr(p, "detach")
                                     else p.numpy() if hasattr(p, "numpy") else p)
            h.update(f"{a.dtype}{a.shape}".encode())
            h.update(a.tobytes())
        else:
            h.update(repr(p).encode())
        h.update(b"\x00")
    return f"{kind}:{h.hexdigest()[:24]}"
