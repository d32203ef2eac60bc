"""What telling duplicates apart costs: the content fingerprint against a plain SHA-256.

Every downloaded message is fingerprinted once (pop3gui/core/mail/fingerprint.py):
its header fields are unfolded and filtered, its line endings normalised, and
the result hashed. This prints the time per message for both, on messages of
several sizes, in one process, and their ratio; a delivery costs 1-2 ms a
message end to end (docs/benchmarks.md), so the fingerprint should stay far
below that. Prints figures, asserts nothing.

    python benchmarks/bench_fingerprint.py [--rounds N]
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pop3gui.core.mail.fingerprint import message_fingerprint  # noqa: E402
from tests.support.same_id import DISTINCT, copies_of  # noqa: E402

SIZES = {"2 KB": 2_000, "10 KB": 10_000, "100 KB": 100_000, "1 MB": 1_000_000}


def _messages(size: int, count: int) -> list[bytes]:
    header = copies_of(DISTINCT["more-cc"])[2].split(b"\r\n\r\n", 1)[0]  # trace, scanner and flag fields
    line = b"A line of an ordinary message body, as mailers write them.\r\n"
    return [header + b"\r\n\r\n" + (b"%d " % i) + line * (size // len(line)) for i in range(count)]


def _per_message_us(work: Callable[[bytes], object], messages: list[bytes], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        for data in messages:
            work(data)
        times.append((time.perf_counter() - started) / len(messages))
    return statistics.median(times) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    print(f"{'size':>7} {'fingerprint':>13} {'sha256':>10} {'ratio':>6}")
    for label, size in SIZES.items():
        messages = _messages(size, max(20, 2_000_000 // size))
        ours = _per_message_us(lambda d: message_fingerprint([d]), messages, args.rounds)
        peer = _per_message_us(lambda d: hashlib.sha256(d).hexdigest(), messages, args.rounds)
        print(f"{label:>7} {ours:>10.1f} µs {peer:>7.1f} µs {ours / peer:>5.1f}×")


if __name__ == "__main__":
    main()
