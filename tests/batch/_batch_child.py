"""Runs a journaled batch until it is killed: the "crash" half of the resume test.

Usage: python _batch_child.py JOURNAL LEDGER COUNT BACKEND

Each operation waits, appends its key to the ledger (the "server-side" effect, one line per
applied write), waits again, and returns: a kill lands between those steps for some items.
"""

from __future__ import annotations

import os
import random
import sys

import anyio

from mfa_common.batch import Journal, run_batch


def main() -> None:
    journal_path, ledger_path, count, backend = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]

    async def apply(key: str) -> None:
        await anyio.sleep(random.uniform(0.0, 0.04))
        fd = os.open(ledger_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, f"{key}\n".encode())
        finally:
            os.close(fd)
        await anyio.sleep(random.uniform(0.0, 0.04))

    async def run() -> None:
        keys = (f"user-{i:04d}" for i in range(count))
        await run_batch(keys, apply, concurrency=20, journal=Journal(journal_path))

    anyio.run(run, backend=backend)


if __name__ == "__main__":
    main()
