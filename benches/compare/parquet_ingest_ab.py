"""CSV against Parquet ingest, interleaved A/B over rounds (issue 16's ingest bar).

Usage: python parquet_ingest_ab.py COBUY ROUNDS NAME=FOLDER[=COBUY]... [-- FIT ARGS]

Each FOLDER holds a file `purchases` (a model records its source's name, so models of the
same rows compare with cmp). Each round runs `COBUY --threads 2 fit --purchases purchases
--model M FIT ARGS` in every folder in turn (the order rotating by round; an input's own
COBUY, when given, instead of the first: builds side by side) and prints, per run: the
`read N rows in` log figure, the process's CPU time (user + sys, all threads) when that
line is logged (the read alone, from /proc/PID/stat), the read's wall time measured here,
the whole process's CPU, wall and peak RSS (os.wait4), and whether the model equals the
first input's (cmp). Lines starting with `#` are the per-round ratios of the first input's
read figures to each other's.
"""

import filecmp
import os
import subprocess
import sys
import time

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # utime and stime are fields 14 and 15 (1-based), 12 and 13 after the command.
    return (int(fields[11]) + int(fields[12])) / TICK


def run(cobuy, name, folder, fit_args):
    model = os.path.join(folder, f"model-{name}.cobuy")
    cmd = [cobuy, "--threads", "2", "fit", "--purchases", "purchases", "--model", model] + fit_args
    start = time.monotonic()
    p = subprocess.Popen(cmd, cwd=folder, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    read_log = read_cpu = read_wall = None
    log = []
    for line in p.stderr:
        log.append(line)
        if read_cpu is None and " rows in " in line and "read " in line:
            read_cpu = cpu_seconds(p.pid)
            read_wall = time.monotonic() - start
            read_log = line.strip().rsplit(" ", 1)[-1]
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.monotonic() - start
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        sys.exit(f"{folder}: exit {code}:\n{''.join(log)}")
    return {"log": read_log, "cpu": read_cpu, "wall": read_wall, "model": model,
            "total_cpu": ru.ru_utime + ru.ru_stime, "total_wall": wall, "rss": ru.ru_maxrss / 1024}  # fmt: skip


def main():
    args = sys.argv[1:]
    fit_args = []
    if "--" in args:
        k = args.index("--")
        args, fit_args = args[:k], args[k + 1 :]
    cobuy, rounds = os.path.abspath(args[0]), int(args[1])
    inputs = []
    for a in args[2:]:
        name, folder, *own = a.split("=", 2)
        inputs.append((name, folder, os.path.abspath(own[0]) if own else cobuy))
    print("round\tinput\tread (log)\tread CPU s\tread wall s\tprocess CPU s\tprocess wall s\tpeak RSS MiB\tmodel")
    for r in range(rounds):
        order = inputs[r % len(inputs) :] + inputs[: r % len(inputs)]
        got = {name: run(exe, name, os.path.abspath(folder), fit_args) for name, folder, exe in order}
        base = got[inputs[0][0]]
        for name, *_ in inputs:
            g = got[name]
            same = "same" if filecmp.cmp(g["model"], base["model"], shallow=False) else "DIFFERENT"
            print(f"{r + 1}\t{name}\t{g['log']}\t{g['cpu']:.2f}\t{g['wall']:.2f}\t{g['total_cpu']:.2f}"
                  f"\t{g['total_wall']:.2f}\t{g['rss']:.0f}\t{same}", flush=True)  # fmt: skip
        for name, *_ in inputs[1:]:
            g = got[name]
            print(
                f"# {r + 1}\t{inputs[0][0]}/{name}\tCPU {base['cpu'] / g['cpu']:.2f}x"
                f"\twall {base['wall'] / g['wall']:.2f}x",
                flush=True,
            )


if __name__ == "__main__":
    main()
