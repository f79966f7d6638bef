"""The CPU a figure was measured on: its model name and instruction-set flags, from /proc/cpuinfo.

Plain Python (no torch), so the benchmark scripts can print it before importing anything heavy;
minialbert/plan.py names the CPU with it too.
"""

from __future__ import annotations

import platform
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")


def _lines() -> list[str]:
    try:
        return CPUINFO.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:  # not Linux
        return []


def cpu_name() -> str:
    """The first `model name` of /proc/cpuinfo, else what platform knows."""
    for line in _lines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown CPU"


def cpu_flags() -> set[str]:
    """The first processor's `flags` (avx2, avx512_vnni, amx_int8, ...); empty where unknown."""
    for line in _lines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def flag_summary(wanted: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """(the wanted flags this CPU has, those it lacks), in the order given."""
    flags = cpu_flags()
    return [f for f in wanted if f in flags], [f for f in wanted if f not in flags]
