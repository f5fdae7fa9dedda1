"""Timing helper shared by the peer comparisons (``benchmarks/peers_*.py``)."""
import time


def best_of(fn, repeat):
    """Call ``fn()`` ``repeat`` times; return (best wall time in seconds, last result)."""
    best, out = float("inf"), None
    for _ in range(max(1, int(repeat))):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out
