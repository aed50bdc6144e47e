"""What every benchmark reports about the machine it runs on: thread settings and the fp32 peak."""
from __future__ import annotations

import argparse
import os
import platform
import time

import torch


def add_thread_and_json_options(ap: argparse.ArgumentParser) -> None:
    """``--threads`` (torch threads, 0 = all cores) and ``--json`` (a file for the results)."""
    from pathlib import Path

    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = all cores)")
    ap.add_argument("--json", type=Path, default=None, help="also write the results to this JSON file")


def matmul_peak_gflops(seconds: float = 3.0, n: int = 2048) -> float:
    """fp32 GFLOP/s of an n×n matrix product on this machine, now."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    k, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        k += 1
    return 2 * n**3 * k / (time.perf_counter() - t0) / 1e9


def start(args: argparse.Namespace) -> float:
    """Apply ``--threads``, measure the fp32 matmul peak, print the machine line; return the peak (GFLOP/s)."""
    if args.threads:
        torch.set_num_threads(args.threads)
    peak = matmul_peak_gflops()
    print(f"# machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; fp32 matmul peak {peak:.0f} GFLOP/s (2048², measured now)")
    return peak


# ---- peak memory (Linux; elsewhere the process's ru_maxrss) ------------------------------------------
def _status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def rss_mib() -> float:
    """This process's resident set size now (MiB; 0 where /proc is unavailable)."""
    return (_status_kib("VmRSS") or 0) / 1024


def reset_peak_rss() -> bool:
    """Reset this process's peak resident set size (``VmHWM``) to its current size, so that
    :func:`peak_rss_mib` reports the peak of what runs next only (``echo 5 > /proc/self/clear_refs``,
    Linux ≥ 4.0). Returns False where that is not possible: the peak then covers the whole process."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_mib() -> float:
    """Peak resident set size (MiB) since :func:`reset_peak_rss`, or since the process started."""
    kib = _status_kib("VmHWM")
    if kib is None:
        import resource

        kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return kib / 1024
