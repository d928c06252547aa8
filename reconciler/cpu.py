"""Whether work that splits in two may take a second process: idle cores, fork, line splits.

The manifest scan (validation + digests) and the results summary decode JSON Lines with msgspec,
which holds the GIL, so a second core helps only from a forked process, and only when a core
is idle now: on a busy machine a second process competes with the first and is slower.
"""

from __future__ import annotations

import multiprocessing
import os
import time


def idle_cores(window: float = 0.03) -> float:
    """How many cores sat idle over the next `window` seconds (/proc/stat), this process's
    own included; on systems without /proc/stat, cores minus the 1-minute load average.

    Sampled now rather than read from the load average: that one decays over a minute, so it
    still counts work that just ended (the previous command, a benchmark's other side)."""
    cores = os.cpu_count() or 1

    def ticks() -> tuple[int, int]:
        with open("/proc/stat", "rb") as stat:
            fields = [int(v) for v in stat.readline().split()[1:]]
        return fields[3] + fields[4], sum(fields[:8])  # idle + iowait, all but guest time

    try:
        idle_before, total_before = ticks()
        time.sleep(window)
        idle_after, total_after = ticks()
    except (OSError, ValueError, IndexError):
        return max(0.0, cores - os.getloadavg()[0])
    elapsed = total_after - total_before
    return cores * (idle_after - idle_before) / elapsed if elapsed > 0 else 0.0


def second_process_pays() -> bool:
    """A forked second process can run now: fork exists, and more than half a core is free
    besides the one this process uses."""
    return (
        "fork" in multiprocessing.get_all_start_methods()
        and (os.cpu_count() or 1) >= 2
        and idle_cores() >= 1.5
    )


def next_line_start(path: str, offset: int, size: int) -> int:
    """Where the line after the one holding byte `offset` starts (`size` if none does): a split
    point from which a second process reads whole lines."""
    with open(path, "rb") as handle:
        handle.seek(offset)
        handle.readline()
        return min(handle.tell(), size)
