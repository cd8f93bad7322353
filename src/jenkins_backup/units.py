"""Human-readable quantities, the same in every log line and table."""

from __future__ import annotations


def human_size(n: float) -> str:
    """Bytes in binary units: ``512 B``, ``1.5 KiB``, ..., ``3.2 TiB`` (TiB is the largest)."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"
