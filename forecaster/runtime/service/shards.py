"""Fleet shards: a frequency group of more than ``settings.shard_size`` workloads is fitted as several models.

    split("freq/5min", ids, 500)   # -> [("freq/5min~part-0", first 500 ids), ("freq/5min~part-1", the next), ...]

A group of at most ``shard_size`` workloads is one model under the group key ``freq/<f>`` (as before sharding).
A larger one is cut into ``ceil(N / shard_size)`` parts of the workload ids in sorted order, each at most
``shard_size`` workloads (e.g. 1,201 workloads at 500 -> 500, 500, 201), keyed ``freq/<f>~part-<i>``. Each part is
a model of its own: its own artefact, its own rollout (champion and challenger per key,
``forecaster.cycle.rollout``), refitted concurrently with the others (``forecaster.runtime.service.refit``) and
refreshed as any other model (``forecaster.runtime.service.refresh``). The parts stay the same while the registry
does; a workload added or removed shifts the ids after it, and the next refit's parts (fitted on their own
workloads) take over from the old ones (``forecaster.runtime.service.serving.follow``).

Pure. Called by ``forecaster.runtime.service.refit``, ``.models``, ``.serving`` and ``.refit.due``.
"""

from __future__ import annotations

from collections.abc import Iterable

PART = "~part-"


def part_key(group: str, index: int) -> str:
    """``freq/5min~part-3``: the key of part ``index`` of ``group``."""
    return f"{group}{PART}{index}"


def is_part(key: str) -> bool:
    """Whether ``key`` is a part of a sharded group (``freq/<f>~part-<i>``, nothing after)."""
    head, sep, tail = key.partition(PART)
    return bool(sep) and "~" not in head and tail.isdigit()


def is_champion_key(key: str) -> bool:
    """A key whose model the refit job fits (the group key or a part), as opposed to a kept or new shard."""
    return "~" not in key or is_part(key)


def split(group: str, ids: Iterable[str], size: int) -> list[tuple[str, list[str]]]:
    """``[(key, workload ids)]`` of ``group`` (module docstring); ``size`` >= 1."""
    ordered = sorted(set(ids))
    if len(ordered) <= size:
        return [(group, ordered)]
    return [(part_key(group, i), ordered[a:a + size]) for i, a in enumerate(range(0, len(ordered), size))]


def members(group: str, key: str, ids: Iterable[str], size: int) -> set[str]:
    """The workloads of ``group`` (all ``ids``) the model of ``key`` is fitted for: its part's, or all of them."""
    for part, mine in split(group, ids, size):
        if part == key:
            return set(mine)
    return set(ids) if key == group else set()
