"""Helpers the harnesses in this folder share: the repository root, shell commands for the report's
environment, the machine description, and timing a child process by its log lines.

The scripts are run as `python benches/compare/X.py`, so this folder is on sys.path (the scripts also
put it there themselves) and `from common import ...` works. Only the standard library is imported
here, and nothing heavy: the orchestrators keep themselves small (a child's peak RSS starts at its
parent's).
"""

import os
import platform
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def sh(argv):
    """stdout of argv run in ROOT, stripped; "?" when it cannot run or fails."""
    try:
        return subprocess.run(argv, capture_output=True, text=True, check=True, cwd=ROOT).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"


def machine(cobuy, packages=()):
    """What every report records about the run: date, CPU (lscpu), memory, kernel, Python, the commit
    and whether the tree is dirty, rustc, `cobuy --version` of the binary measured, and the version of
    each Python package named in `packages` (a key per package, its name as given)."""
    from importlib.metadata import version  # here, not at import: keeps the orchestrator small

    lscpu = sh(["lscpu"]).splitlines()
    field = lambda k: next((l.split(":", 1)[1].strip() for l in lscpu if l.startswith(k + ":")), "?")  # noqa: E731
    with open("/proc/meminfo") as f:
        mem_kib = next((l.split()[1] for l in f if l.startswith("MemTotal:")), "0")
    dirty = sh(["git", "status", "--porcelain"])
    # sh runs in ROOT: a relative path is resolved from this process's directory, as when the scripts run cobuy
    cobuy = os.path.abspath(cobuy) if os.sep in cobuy else cobuy
    return {
        "date": sh(["date", "-u"]),
        "cpu": field("Model name"), "cpus": field("CPU(s)"), "cores_per_socket": field("Core(s) per socket"),
        "threads_per_core": field("Thread(s) per core"), "os_cpu_count": os.cpu_count(),
        "mem_gib": int(mem_kib) / 2**20, "kernel": platform.release(), "python": platform.python_version(),
        "commit": sh(["git", "rev-parse", "--short", "HEAD"]),
        "dirty": bool(dirty and dirty != "?"), "dirty_files": dirty,
        "cobuy": sh([cobuy, "--version"]), "rustc": sh(["rustc", "--version"]),
        **{p: version(p) for p in packages},
    }  # fmt: skip


def loadavg():
    with open("/proc/loadavg") as f:
        return [float(v) for v in f.read().split()[:3]]


def run_child(argv, env=None):
    """Runs argv; returns a dict: wall s, cpu s (user + sys), peak RSS MiB (os.wait4's ru_maxrss, KiB on
    Linux), stdout, stderr lines with their arrival time since start, load average before. Exits with
    the child's log if it fails."""
    la = loadavg()
    t0 = time.perf_counter()
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    lines = []
    for line in p.stderr:  # cobuy logs each stage as it ends; note when each line arrives
        lines.append((time.perf_counter() - t0, line.rstrip("\n")))
    out = p.stdout.read()
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        sys.exit(f"{' '.join(argv)} failed ({code}):\n" + "\n".join(l for _, l in lines))
    return {"wall": wall, "cpu": ru.ru_utime + ru.ru_stime, "user": ru.ru_utime, "sys": ru.ru_stime,
            "rss": ru.ru_maxrss / 1024.0, "stdout": out, "lines": lines, "load_before": la}  # fmt: skip


def line_time(lines, pattern):
    """(arrival time, match) of the first of run_child's lines matching pattern; exits if none does."""
    for t, line in lines:
        m = re.search(pattern, line, re.IGNORECASE)  # cobuy's wording is not an API: match loosely
        if m:
            return t, m
    sys.exit(f"no log line matches {pattern!r}:\n" + "\n".join(l for _, l in lines))
