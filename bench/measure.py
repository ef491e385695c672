"""Shared by the Python benchmark drivers under bench/: running one measured process."""
import json, os, subprocess, sys


def run_json(cmd, env=None):
    """Runs one process (in `env`, default this one's); returns its last JSON line (a dict) with
    its peak RSS in MiB (wait4's rusage) as "rss_mib". Exits the benchmark when the process fails."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    out = proc.stdout.read()
    _, status, ru = os.wait4(proc.pid, 0)
    if status != 0:
        sys.exit(f"failed: {' '.join(cmd)}")
    r = json.loads([l for l in out.splitlines() if l.startswith("{")][-1])
    r["rss_mib"] = ru.ru_maxrss / 1024
    return r
