"""Issues one replay-safe TOTP code through a state-file step registry, on a fake clock.

Usage: python _step_child.py STATE_FILE NOW

Prints ``{"step": N, "slept": S}``: the step it was handed and how long it waited on the fake
clock (so two processes at the same fake moment need no real 30-second wait).
"""

from __future__ import annotations

import json
import sys

import anyio

from mfa_common.clock import FakeClock
from mfa_common.replay_guard import next_totp
from mfa_common.replay_state import FileStepRegistry
from mfa_common.totp import Totp

SECRET = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"


async def main() -> None:
    path, now = sys.argv[1], float(sys.argv[2])
    clock = FakeClock(now)
    issued = await next_totp(Totp(SECRET), clock=clock, registry=FileStepRegistry(path))
    print(json.dumps({"step": issued.step, "slept": sum(clock.sleeps)}))


if __name__ == "__main__":
    anyio.run(main)
