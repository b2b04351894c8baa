"""Write N bytes of reproducible, partly compressible data to stdout (for memory tests)."""

from __future__ import annotations

import random
import sys


def main() -> None:
    total = int(sys.argv[1])
    rng = random.Random(42)
    out = sys.stdout.buffer
    block = 4 * 1024 * 1024
    while total > 0:
        size = min(block, total)
        half = size // 2
        out.write(rng.randbytes(half) + bytes(size - half))
        total -= size


if __name__ == "__main__":
    main()
