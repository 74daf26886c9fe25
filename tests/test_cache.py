"""skimviz.cache: the bounded LRU the server's shared caches use, and content keys."""
import threading

import numpy as np
import pytest
import torch

from skimviz.cache import BoundedCache, content_key


def test_least_recently_used_goes_first():
    c = BoundedCache(2)
    c.put("a", 1)
    c.put("b", 2)
    assert c.get("a") == 1             # "a" used: "b" is now the oldest
    c.put("c", 3)
    assert "b" not in c and list(c) == ["a", "c"] and len(c) == 2
    assert c.get("b", "none") == "none"
    c.clear()
    assert len(c) == 0
    with pytest.raises(ValueError):
        BoundedCache(0)


def test_threads_never_exceed_the_bound():
    c = BoundedCache(16)

    def fill(base):
        for i in range(500):
            c.put((base, i), i)
            c.get((base, i - 1))
    ts = [threading.Thread(target=fill, args=(b,)) for b in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert len(c) == 16


def test_content_keys_follow_values_shapes_and_types():
    a = np.arange(6.0)
    assert content_key("k", a, 0.5) == content_key("k", a.copy(), 0.5)
    assert content_key("k", a, 0.5) == content_key("k", torch.arange(6.0, dtype=torch.float64), 0.5)
    for other in (content_key("k", a, 0.55), content_key("k", a.reshape(2, 3), 0.5),
                  content_key("k", a.astype(np.float32), 0.5), content_key("j", a, 0.5)):
        assert other != content_key("k", a, 0.5)
