"""The benchmark server behind the shipped fault-injection middleware, for the batch benchmark.

``BENCH_LATENCY`` (seconds, default 0) is added to every request by
:class:`mfa_common.testing.FakeControls`, the same knob every API fake uses.
"""

from __future__ import annotations

import os

from benchmarks.server_app import app as _inner
from mfa_common.testing import FakeControls, FaultInjectionMiddleware

controls = FakeControls(latency=float(os.environ.get("BENCH_LATENCY", "0")))
app = FaultInjectionMiddleware(_inner, controls)
