"""A user's script with a TOTP secret: log in to a Quatrix server and read the profile.

It chooses no step registry: whatever the SDK does by default. The server, user and secret come
from the environment (``SCRIPT_URL``, ``SCRIPT_EMAIL``, ``SCRIPT_PASSWORD``,
``SCRIPT_TOTP_SECRET``), never argv. The client's clock is a FakeClock at ``SCRIPT_NOW`` (the fake
server's moment), so waiting for the next step costs no real time. ``SCRIPT_DEBUG=1`` sends the
SDK's DEBUG log to stderr. Prints ``{"slept": S}``: how long it waited on its clock.
"""

from __future__ import annotations

import json
import logging
import os
import sys

import anyio

from mfa_common.clock import FakeClock
from quatrix_async import QuatrixClient


async def main() -> None:
    if os.environ.get("SCRIPT_DEBUG") == "1":
        logging.basicConfig(stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
        logging.getLogger("mfa_common").setLevel(logging.DEBUG)
    clock = FakeClock(float(os.environ["SCRIPT_NOW"]))
    async with QuatrixClient(
        os.environ["SCRIPT_URL"],
        email=os.environ["SCRIPT_EMAIL"],
        password=os.environ["SCRIPT_PASSWORD"],
        totp_secret=os.environ["SCRIPT_TOTP_SECRET"],
        clock=clock,
    ) as client:
        await client.profile.get()
    print(json.dumps({"slept": sum(clock.sleeps)}))


if __name__ == "__main__":
    anyio.run(main)
