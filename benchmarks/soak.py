"""Soak benchmark: the real runner through thousands of cycles, watching for leaks.

Drives ``pop3gui run`` (``--mode headless``) or ``pop3gui tray`` under Xvfb
with trayer as its system tray (``--mode tray``) through N cycles (default
2,000) a second apart, against a private Dovecot and Postfix on loopback, with
mail on every other cycle and, in every period of N/10 cycles, a refused login,
the local server down for a stretch, and a message refused by policy
(quarantined).  After every cycle it samples the runner's resident memory
(VmRSS), open file descriptors, threads, asyncio tasks (from a probe inside the
runner, benchmarks/soak_runner.py) and the event store's size on disk.

After the warm-up (the first 10 %, one whole fault period) it checks: RSS
growth under 10 %, the counts back on quiet cycles to their values after the
warm-up and never above the warm-up's maximum, the event store under
``[events] max_mb`` when this pop3gui has that setting.  It prints a summary,
writes a CSV and, when matplotlib can be imported, a PNG of the curves.

Run as root from the repository root (one mode takes about 35 minutes)::

    .venv/bin/python benchmarks/soak.py --mode headless
    .venv/bin/python benchmarks/soak.py --mode tray --cycles 200 --interval 0   # a quick look

Exit status 0 when every check passed, 1 when one failed, 2 when it could not run.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

import soak_rig  # noqa: E402
from soak_rig import COUNTS, Sample, Verdict  # noqa: E402

ROOT = BENCH_DIR.parent


def summary(mode: str, samples: list[Sample], v: Verdict, wall: float) -> str:
    runs = [s for s in samples if s.cycle > 0]
    faults = {name: sum(1 for s in runs if name in s.step)
              for name in (soak_rig.MAIL, soak_rig.LOGIN_REFUSED, soak_rig.LOCAL_DOWN, soak_rig.QUARANTINE)}
    rows = [
        ("mode", mode),
        ("cycles", f"{len(runs)} in {wall / 60:.1f} min (warm-up: the first {v.warmup})"),
        ("steps", ", ".join(f"{k} {n}" for k, n in faults.items())),
        ("delivered / quarantined", f"{sum(s.delivered for s in runs)} / {sum(s.quarantined for s in runs)}"),
        ("RSS at start", f"{v.rss_start_kb / 1024:.1f} MiB"),
        ("RSS after warm-up", f"{v.rss_warm_kb / 1024:.1f} MiB (median of the warm-up's last tenth)"),
        ("RSS at the end", f"{v.rss_end_kb / 1024:.1f} MiB (median of the last tenth): {v.rss_growth:+.1%}"),
        ("RSS max", f"{v.maxima['rss_kb'] / 1024:.1f} MiB"),
    ]
    for metric in COUNTS:
        after, top, end = v.constant.get(metric, (0, 0, 0))
        rows.append((metric, f"max {v.maxima[metric]}; quiet cycles after warm-up: first {after}, max {top}, "
                             f"last {end}"))
    cap = "no cap in this pop3gui" if v.events_cap_mb is None else f"cap {v.events_cap_mb:g} MiB"
    rows.append(("event store", f"{v.events_mb:.1f} MiB at most, file and WAL ({cap})"))
    rows.append(("verdict", "PASS" if v.ok else "FAIL: " + "; ".join(v.problems)))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {val}" for k, val in rows) + "\n"


def plot(samples: list[Sample], v: Verdict, title: str, path: Path) -> bool:
    """The curves as a PNG; False when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        return False
    x = [s.cycle for s in samples]
    fig, axes = plt.subplots(5, 1, figsize=(10, 11), sharex=True)
    series: list[tuple[str, list[float]]] = [("RSS (MiB)", [s.rss_kb / 1024 for s in samples]), ("open fds", [float(s.fds) for s in samples]),
              ("threads", [float(s.threads) for s in samples]), ("asyncio tasks", [float(s.tasks) for s in samples]),
              ("event store (MiB)", [s.events_bytes / soak_rig.MIB for s in samples])]
    for ax, (label, ys) in zip(axes, series):
        ax.plot(x, ys, linewidth=0.8)
        ax.set_ylabel(label)
        if label in ("open fds", "threads", "asyncio tasks"):
            ax.yaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_ylim(0, max(ys) * 1.25 + 1)
        ax.axvline(v.warmup, color="grey", linestyle=":", linewidth=0.8)
        for s in samples:
            if soak_rig.LOCAL_DOWN in s.step:
                ax.axvspan(s.cycle - 0.5, s.cycle + 0.5, color="red", alpha=0.25, linewidth=0)
            elif soak_rig.LOGIN_REFUSED in s.step:
                ax.axvspan(s.cycle - 0.5, s.cycle + 0.5, color="orange", alpha=0.25, linewidth=0)
        ax.grid(True, alpha=0.3)
    if v.events_cap_mb is not None:
        axes[4].axhline(v.events_cap_mb, color="red", linestyle="--", linewidth=0.8)
    axes[0].set_title(title)
    axes[-1].set_xlabel("cycle (dotted: end of warm-up; shaded: local server down (red), refused login (orange))")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Soak the real runner for leaks (real Dovecot and Postfix on "
                                     "loopback; needs root).")
    parser.add_argument("--mode", choices=["headless", "tray"], required=True)
    parser.add_argument("--cycles", type=int, default=2000, help="cycles after the one at start (default 2000)")
    parser.add_argument("--interval", type=float, default=1.0,
                        help="seconds from one cycle's start to the next (0: back to back; default 1)")
    parser.add_argument("--period", type=int, default=0,
                        help="cycles per fault period (default: a tenth of --cycles, at least 20)")
    parser.add_argument("--message-kb", type=int, default=32, help="size of each seeded message (default 32)")
    parser.add_argument("--events-max-mb", type=int, metavar="MB",
                        help="write [events] max_mb = MB into the runner's config (default: pop3gui's default), "
                        "to watch the store kept under a cap it reaches during the soak; with --csv: the cap that run had")
    parser.add_argument("--out", type=Path, default=ROOT / "docs",
                        help="folder for soak-MODE.csv and benchmarks-soak-MODE.png (default docs/)")
    parser.add_argument("--csv", type=Path, help="only analyse and plot this CSV of an earlier run")
    args = parser.parse_args(argv)

    period = args.period or max(20, args.cycles // 10)
    csv_path = args.out / f"soak-{args.mode}.csv"
    png_path = args.out / f"benchmarks-soak-{args.mode}.png"
    args.out.mkdir(parents=True, exist_ok=True)
    began = time.monotonic()
    cap: float | None = None
    if args.csv is not None:
        samples = soak_rig.read_csv(args.csv)
        wall = samples[-1].seconds if samples else 0.0
        cap = args.events_max_mb  # the run's cap is not in its CSV: say it again
    else:
        if os.geteuid() != 0:
            print("soak: must run as root (private Dovecot and Postfix instances).", file=sys.stderr)
            return 2
        every = max(1, args.cycles // 20)

        def progress(s: Sample) -> None:
            if s.cycle % every == 0:
                print(f"cycle {s.cycle:>5}  rss {s.rss_kb / 1024:6.1f} MiB  fds {s.fds:3}  threads {s.threads:3}  "
                      f"tasks {s.tasks:3}  events {s.events_bytes / soak_rig.MIB:6.1f} MiB  {s.step}", flush=True)

        try:
            samples, cap = soak_rig.soak(args.mode, args.cycles, interval=args.interval, period=period,
                                         message_size=args.message_kb * 1024, events_max_mb=args.events_max_mb,
                                         progress=progress)
        except (RuntimeError, OSError) as exc:
            print(f"soak: {exc}", file=sys.stderr)
            return 2
        wall = time.monotonic() - began
        soak_rig.write_csv(samples, csv_path)
    v = soak_rig.verdict(samples, cap_mb=cap)
    print()
    print(summary(args.mode, samples, v, wall), end="")
    if args.csv is None:
        print(f"CSV: {csv_path}")
    title = f"pop3gui soak, {args.mode}: {len(samples) - 1} cycles"
    if plot(samples, v, title, png_path):
        print(f"plot: {png_path}")
    else:
        print("plot: matplotlib is not installed (pip install matplotlib into the venv for the plot)")
    return 0 if v.ok else 1


if __name__ == "__main__":
    sys.exit(main())
