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
