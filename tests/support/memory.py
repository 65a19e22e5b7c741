"""A process's memory as Linux accounts it, for the benchmarks' memory figures."""

from __future__ import annotations

from pathlib import Path


def smaps_rollup_kb(pid: int | str = "self") -> dict[str, int]:
    """The kB fields of /proc/<pid>/smaps_rollup (Pss, Private_Clean, ...); {} when the process is gone.

    PSS shares each shared page among the processes mapping it, so replicas' PSS add up to what they
    really hold together; USS (Private_Clean + Private_Dirty) is what ending the process would free."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return {}
    fields = {}
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        parts = rest.split()
        if len(parts) == 2 and parts[1] == "kB":
            fields[name] = int(parts[0])
    return fields
