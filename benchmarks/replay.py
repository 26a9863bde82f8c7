"""How long the Mali replay takes, and what it costs.

    python benchmarks/replay.py                 # --speed max and the default speed, once each
    python benchmarks/replay.py --runs 3 --every 1h

Prints, per run: the wall time of the replay, the checks made and checks per second, the
changes and alerts recorded (which must not vary), and the process's peak resident memory.
Each run starts from a fresh SQLite database in a temporary folder.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
from datetime import timedelta
from pathlib import Path

from monitor.replay.run import DEFAULT_EVERY, DEFAULT_SPEED, ReplayOptions, ReplayResult, replay

SEED = Path(__file__).resolve().parents[1] / "seeds" / "mali-2025-11"


def measure(speed: float | None, every: timedelta, seed: Path = SEED) -> ReplayResult:
    with tempfile.TemporaryDirectory() as folder:
        return replay(seed, ReplayOptions(out=Path(folder), speed=speed, every=every))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--every", default=f"{DEFAULT_EVERY.total_seconds() / 3600:g}h")
    args = parser.parse_args(argv)
    from monitor.config import parse_duration

    every = parse_duration(args.every)
    print(f"seed {SEED.name}, each source checked every {args.every} (simulated)")
    print(f"{'speed':>10} {'seconds':>8} {'checks':>7} {'checks/s':>9} {'changes':>8} {'alerts':>7}")
    for speed in (None, DEFAULT_SPEED):
        for _ in range(args.runs):
            result = measure(speed, every)
            changes = len(result.fired) + sum(result.quiet.values())
            shown = "max" if speed is None else f"{speed:,.0f}"
            print(
                f"{shown:>10} {result.seconds:8.1f} {result.checks:7,} "
                f"{result.checks / result.seconds:9.0f} {changes:8} {len(result.fired):7}"
            )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak resident memory: {peak:.0f} MB")


if __name__ == "__main__":
    main()
