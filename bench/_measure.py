"""Measuring helpers shared by the benchmarks: whole processes with their peak memory, and
summary rows (median, min, peak RSS) for docs/benchmarks.md.

A whole process runs under GNU time (``/usr/bin/time``): wall time from spawn to exit, CPU
time (user + system) and the peak RSS of the largest of the process and the descendants it
waited for (git spawns index-pack and fetch subprocesses).
"""

from __future__ import annotations

import os
import platform
import resource
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Sample:
    wall_ms: float
    cpu_ms: float
    rss_mib: float
    stdout: bytes = b""


@dataclass
class Series:
    """Repeated samples of one method."""

    name: str
    samples: list[Sample] = field(default_factory=list)

    def add(self, sample: Sample) -> Sample:
        self.samples.append(sample)
        return sample

    @property
    def median_ms(self) -> float:
        return statistics.median(s.wall_ms for s in self.samples)

    @property
    def min_ms(self) -> float:
        return min(s.wall_ms for s in self.samples)

    @property
    def cpu_ms(self) -> float:
        return statistics.median(s.cpu_ms for s in self.samples)

    @property
    def rss_mib(self) -> float:
        return max(s.rss_mib for s in self.samples)

    def row(self, *extra: str) -> str:
        cells = [self.name, ms(self.median_ms), ms(self.min_ms), ms(self.cpu_ms)]
        rss = f"{self.rss_mib:.1f} MiB" if self.rss_mib else "–"
        return "| " + " | ".join([*cells, rss, *extra]) + " |"


def ms(value: float) -> str:
    """Milliseconds with the precision the size calls for (per-file rows are sub-ms)."""
    return f"{value:.2f} ms" if value < 10 else f"{value:.1f} ms" if value < 100 else f"{value:.0f} ms"


TIME = "/usr/bin/time"
TABLE_HEAD = "| method | median | min | CPU (median) | peak RSS |"


def run_process(argv: list[str], *, env: dict[str, str] | None = None, cwd: str | None = None) -> Sample:
    """Run `argv` to completion under GNU time: wall time (ours), CPU time and peak RSS of it
    and its descendants. GNU time, not wait4 from here: a child forked from this (large)
    Python process would inherit its RSS high-water mark at exec."""
    with tempfile.NamedTemporaryFile("w+") as usage, tempfile.TemporaryFile() as errfile:
        cmd = [TIME, "-f", "%M %U %S", "-o", usage.name, *argv]
        start = time.perf_counter()
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=errfile, env=env, cwd=cwd, check=False)
        wall = (time.perf_counter() - start) * 1000
        if proc.returncode != 0:
            errfile.seek(0)
            err = errfile.read().decode(errors="replace")[-2000:]
            raise RuntimeError(f"{argv[0]} failed ({proc.returncode}): {err}")
        usage.seek(0)
        rss_kib, user, system = usage.read().split()[-3:]
    return Sample(wall, (float(user) + float(system)) * 1000, int(rss_kib) / 1024, proc.stdout)


def timed(fn) -> Sample:  # noqa: ANN001 - any callable
    """One in-process call: wall time, and CPU time of this process plus the children it
    waited for (git subprocesses). RSS is the caller's to read."""
    cpu = _cpu_s()
    start = time.perf_counter()
    fn()
    return Sample((time.perf_counter() - start) * 1000, (_cpu_s() - cpu) * 1000, 0.0)


def _cpu_s() -> float:
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def peak_rss_mib() -> float:
    """This process's peak RSS so far."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def compile_bytecode(root: Path) -> None:
    """Compile `root`/core's bytecode, as an installed package has it: without it each whole
    process would compile core from source (this machine sets ``PYTHONDONTWRITEBYTECODE``)."""
    import sys

    subprocess.run([sys.executable, "-m", "compileall", "-q", str(root / "core")], check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo ("" where it cannot be read)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def machine() -> str:
    cpu = cpu_model() or "unknown"
    load = os.getloadavg()[0]
    return (f"{os.cpu_count()} CPUs (`nproc` {len(os.sched_getaffinity(0))}), {cpu}; "
            f"Python {platform.python_version()}; load average {load:.1f} at the start")  # fmt: skip


def write_section(doc: Path, head: str, section: str) -> None:
    """Replace the ``## head`` section of `doc` in place, or append it (the file is shared)."""
    text = doc.read_text() if doc.exists() else "# Benchmarks\n"
    marker = f"## {head}"
    if marker in text:
        start = text.index(marker)
        end = text.find("\n## ", start + len(marker))
        text = text[:start] + section.strip("\n") + ("\n" + text[end:] if end != -1 else "\n")
    else:
        text = text.rstrip("\n") + "\n\n" + section.strip("\n") + "\n"
    doc.write_text(text)
