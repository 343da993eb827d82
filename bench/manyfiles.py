#!/usr/bin/env python3
"""bench/manyfiles.py N DIR: a tree of N small files (0-4 KiB of random bytes each,
100 per directory, directories 100 wide), the "many files" dataset of docs/PERFORMANCE.md.
The same N gives the same names and sizes (seeded); contents are random."""
import os
import random
import sys

n, root = int(sys.argv[1]), sys.argv[2]
rng = random.Random(n)
pool = os.urandom(1 << 22)
for i in range(n):
    d = os.path.join(root, f"d{i // 10000:04}", f"s{(i // 100) % 100:02}")
    if i % 100 == 0:
        os.makedirs(d, exist_ok=True)
    size = rng.randrange(4097)
    off = rng.randrange(len(pool) - size)
    with open(os.path.join(d, f"f{i % 100:02}"), "wb") as f:
        # Each file unique: its number, then a slice of the pool.
        f.write(i.to_bytes(8, "little")[: min(8, size)] + pool[off : off + max(0, size - 8)])
