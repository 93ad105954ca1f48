"""Knobs shared by every fake server: latency, rate limiting, injected faults, a write ledger.

A fake app holds one :class:`FakeControls` (as ``app.state.controls`` or an attribute ``controls``)
and is wrapped in :class:`FaultInjectionMiddleware`. The controls are thread-safe: the fake may run
in a uvicorn thread while the test thread changes knobs and reads counters.

How each fault reaches a client
-------------------------------

``server_error``
    A 500 or 503 with the fake's error body; the handler is not run.
``rate_limited``
    A 429 with ``Retry-After`` (whole seconds, at least 1) and the error body; handler not run.
``drop_before``
    The handler is not run. The middleware reads the rest of the request, starts a 200 response
    whose ``Content-Length`` is larger than the bytes it sends, then raises
    :class:`InjectedDisconnect`. Over uvicorn (h11 or httptools) the server then closes the socket
    mid-body, so the client sees an incomplete response: httpx's default transport raises
    ``RemoteProtocolError``, the aiohttp-based transport ``ReadError``. uvicorn's error log line
    for this exception is suppressed. In-process, ``httpx.ASGITransport`` re-raises the app's
    exception, and as :class:`InjectedDisconnect` subclasses ``RemoteProtocolError`` the client sees
    a transport error there too (its ``.request`` is unset). With
    ``ASGITransport(raise_app_exceptions=False)`` the client gets the truncated body instead.
``drop_after``
    The handler runs (its write is applied and recorded in the ledger), its response is captured,
    then delivered broken exactly as for ``drop_before``.
``slow``
    The handler runs, then the middleware sleeps ``slow_seconds`` before sending its response, so a
    client timeout shorter than that fires while the write is already applied. Over sockets httpx
    raises ``ReadTimeout``; when the client hangs up, the sleep ends early and nothing is sent.
    In-process, ``ASGITransport`` does not enforce httpx timeouts: the response is merely late, so
    wrap the call in a deadline (``anyio.fail_after`` or the SDK's own total deadline) to see the
    timeout; the handler has run by then as well.
``malformed``
    A 200 with ``Content-Type: application/json`` and a truncated JSON body; handler not run.
``garbled_after``
    The handler runs (its write is applied and recorded in the ledger), then its answer arrives
    complete (a correct ``Content-Length``, its own status; 200 for a body-less one) but with a
    garbled body: the first half of the real body followed by bytes that are not JSON. The
    client reads a whole 2xx it cannot parse, for a write the server did apply: an unknown
    outcome, not a failure to repeat. (Together with ``drop_after`` and ``slow`` this covers
    "the write was applied, then its answer was lost": broken connection, timeout, garbage.)
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import logging
import math
import random
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal, cast, get_args

import anyio

from mfa_common._httpx import RemoteProtocolError

__all__ = [
    "FAULT_KINDS",
    "Decision",
    "ErrorBodyFactory",
    "FakeControls",
    "FaultInjectionMiddleware",
    "FaultKind",
    "FaultPlan",
    "InjectedDisconnect",
    "Ledger",
    "LedgerEntry",
    "add_control_arguments",
    "controls_from_arguments",
    "default_error_body",
    "find_controls",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

FaultKind = Literal[
    "server_error", "rate_limited", "drop_before", "drop_after", "slow", "malformed", "garbled_after"
]
FAULT_KINDS: Final[tuple[FaultKind, ...]] = get_args(FaultKind)

ErrorBodyFactory = Callable[[int, str], Mapping[str, Any]]

_MALFORMED_BODY: Final = b'{"data":{"id":"42","attributes":{"name":"trunc'
_DROP_BEFORE_BODY: Final = b'{"data":'
# Appended to half of a real body by ``garbled_after``: never valid JSON, nor UTF-8.
_GARBLE: Final = b"\xff\xfe<garbled"
_DROP_EXTRA_BYTES: Final = 1024
_MAX_RECEIVE_MESSAGES: Final = 100_000


def default_error_body(status: int, message: str) -> dict[str, Any]:
    """Generic error body used when a fake supplies none."""
    return {"status": status, "message": message}


class InjectedDisconnect(RemoteProtocolError):
    """Raised by the middleware to break a connection on purpose (``drop_*`` faults)."""


# --------------------------------------------------------------------------------------------
# Ledger


@dataclass(frozen=True)
class LedgerEntry:
    """One applied write."""

    seq: int
    operation: str
    key: str
    details: Mapping[str, Any]
    timestamp: float


class Ledger:
    """Thread-safe, append-only record of the writes a fake applied."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[LedgerEntry] = []
        self._seq = 0

    def record(self, operation: str, key: str, **details: Any) -> LedgerEntry:
        """Append one applied write and return its entry (sequence numbers start at 1)."""
        with self._lock:
            self._seq += 1
            entry = LedgerEntry(self._seq, operation, key, dict(details), time.time())
            self._entries.append(entry)
            return entry

    def entries(self, operation: str | None = None) -> list[LedgerEntry]:
        """All entries in order, optionally only those of one operation."""
        with self._lock:
            return [e for e in self._entries if operation is None or e.operation == operation]

    def keys(self, operation: str | None = None) -> set[str]:
        """The distinct keys written (by one operation, or by any)."""
        return {e.key for e in self.entries(operation)}

    def count(self, operation: str, key: str) -> int:
        """How many times ``operation`` was applied to ``key``."""
        with self._lock:
            return sum(1 for e in self._entries if e.operation == operation and e.key == key)

    def duplicates(self, operation: str | None = None) -> dict[str, int]:
        """Keys applied more than once.

        With ``operation`` the result maps key -> count; without it, entries are grouped per
        (operation, key) and the result maps ``"operation:key"`` -> count.
        """
        entries = self.entries(operation)
        if operation is not None:
            counts = Counter(e.key for e in entries)
        else:
            counts = Counter(f"{e.operation}:{e.key}" for e in entries)
        return {k: n for k, n in counts.items() if n > 1}

    def clear(self) -> None:
        """Forget every entry (sequence numbers keep increasing)."""
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def __repr__(self) -> str:
        return f"Ledger(entries={len(self)})"


# --------------------------------------------------------------------------------------------
# Fault plan


def _check_probability(name: str, value: float) -> float:
    value = float(value)
    if not 0.0 <= value <= 1.0 or math.isnan(value):
        raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}")
    return value


def _path_matches(patterns: Iterable[str], path: str) -> bool:
    return any(path == p or fnmatch.fnmatchcase(path, p) for p in patterns)


@dataclass
class FaultPlan:
    """Per-request fault probabilities with a seeded generator for reproducible runs.

    At most one fault is chosen per request; the probabilities must sum to at most 1.
    ``only_paths`` (exact paths or ``fnmatch`` patterns) and ``methods`` restrict which requests
    may receive a random fault.
    """

    server_error: float = 0.0
    rate_limited: float = 0.0
    drop_before: float = 0.0
    drop_after: float = 0.0
    slow: float = 0.0
    malformed: float = 0.0
    garbled_after: float = 0.0
    seed: int | None = None
    slow_seconds: float = 3.0
    retry_after: int = 1
    server_error_statuses: tuple[int, ...] = (500, 503)
    only_paths: tuple[str, ...] | None = None
    methods: tuple[str, ...] | None = None
    rng: random.Random = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        total = 0.0
        for kind in FAULT_KINDS:
            total += _check_probability(kind, getattr(self, kind))
        if total > 1.0 + 1e-9:
            raise ValueError(f"fault probabilities sum to {total}, more than 1")
        if self.slow_seconds < 0:
            raise ValueError("slow_seconds must be >= 0")
        if self.retry_after < 1:
            raise ValueError("retry_after must be >= 1")
        if not self.server_error_statuses:
            raise ValueError("server_error_statuses must not be empty")
        if self.only_paths is not None:
            self.only_paths = tuple(self.only_paths)
        if self.methods is not None:
            self.methods = tuple(m.upper() for m in self.methods)
        self.rng = random.Random(self.seed)

    @classmethod
    def uniform(
        cls,
        rate: float,
        *,
        kinds: Iterable[FaultKind] = FAULT_KINDS,
        seed: int | None = None,
        **options: Any,
    ) -> FaultPlan:
        """A plan injecting a fault into ``rate`` of the requests, split evenly over ``kinds``."""
        rate = _check_probability("rate", rate)
        chosen = tuple(dict.fromkeys(kinds))
        for kind in chosen:
            if kind not in FAULT_KINDS:
                raise ValueError(f"unknown fault kind {kind!r}; expected one of {FAULT_KINDS}")
        share = rate / len(chosen) if chosen else 0.0
        probabilities: dict[str, Any] = {kind: share for kind in chosen}
        return cls(seed=seed, **probabilities, **options)

    @property
    def total(self) -> float:
        """Probability that a matching request gets some fault."""
        return sum(float(getattr(self, kind)) for kind in FAULT_KINDS)

    def applies_to(self, method: str, path: str) -> bool:
        """Whether random faults may hit this request."""
        if self.methods is not None and method.upper() not in self.methods:
            return False
        return self.only_paths is None or _path_matches(self.only_paths, path)

    def reseed(self, seed: int | None) -> None:
        """Restart the random sequence."""
        self.seed = seed
        self.rng = random.Random(seed)

    def draw(self) -> FaultKind | None:
        """Pick a fault (or none) using the plan's generator; not thread-safe on its own."""
        roll = self.rng.random()
        cumulative = 0.0
        for kind in FAULT_KINDS:
            cumulative += float(getattr(self, kind))
            if roll < cumulative:
                return kind
        return None


# --------------------------------------------------------------------------------------------
# Controls


@dataclass(frozen=True)
class Decision:
    """What the middleware does with one request (see :meth:`FakeControls.decide`)."""

    kind: FaultKind | None
    delay: float
    status: int = 0
    retry_after: int = 1
    slow_seconds: float = 0.0
    throttled: bool = False


@dataclass
class _Scripted:
    kind: FaultKind
    remaining: int
    path: str | None
    method: str | None


_CONFIG_KEYS: Final = frozenset(
    {
        "latency",
        "latency_jitter",
        "seed",
        "fault_rate",
        "fault_kinds",
        "slow_seconds",
        "retry_after",
        "server_error_statuses",
        "only_paths",
        "methods",
        "rate_limit",
        "burst",
        "error_body",
        *FAULT_KINDS,
    }
)


class FakeControls:
    """Thread-safe knobs and counters for one fake server."""

    def __init__(
        self,
        *,
        latency: float = 0.0,
        latency_jitter: float = 0.0,
        faults: FaultPlan | None = None,
        error_body: ErrorBodyFactory | None = None,
        seed: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lock = threading.RLock()
        self._clock = clock
        self._latency = 0.0
        self._latency_jitter = 0.0
        self.latency = latency
        self.latency_jitter = latency_jitter
        self._jitter_rng = random.Random(seed)
        self._faults = faults if faults is not None else FaultPlan(seed=seed)
        self.error_body: ErrorBodyFactory = error_body or default_error_body
        self.ledger = Ledger()
        self._scripted: list[_Scripted] = []
        self._rate: float | None = None
        self._burst = 1
        self._tokens = 0.0
        self._refilled_at = 0.0
        self._requests: Counter[tuple[str, str]] = Counter()
        self._faults_injected: Counter[str] = Counter()
        self._throttled = 0

    # -- knobs ---------------------------------------------------------------------------

    @property
    def latency(self) -> float:
        """Seconds added before every response."""
        return self._latency

    @latency.setter
    def latency(self, value: float) -> None:
        if value < 0 or math.isnan(value):
            raise ValueError("latency must be >= 0")
        self._latency = float(value)

    @property
    def latency_jitter(self) -> float:
        """Extra random delay, uniform in ``[0, latency_jitter]`` seconds."""
        return self._latency_jitter

    @latency_jitter.setter
    def latency_jitter(self, value: float) -> None:
        if value < 0 or math.isnan(value):
            raise ValueError("latency_jitter must be >= 0")
        self._latency_jitter = float(value)

    @property
    def faults(self) -> FaultPlan:
        """The random fault plan (replace it to change probabilities)."""
        with self._lock:
            return self._faults

    @faults.setter
    def faults(self, plan: FaultPlan | None) -> None:
        with self._lock:
            self._faults = plan if plan is not None else FaultPlan()

    def rate_limit(self, requests_per_second: float | None, burst: int = 1) -> None:
        """Enable a token bucket (``None`` or ``0`` disables it); over the limit → 429."""
        with self._lock:
            if not requests_per_second:
                self._rate = None
                return
            if requests_per_second < 0 or burst < 1:
                raise ValueError("requests_per_second must be > 0 and burst >= 1")
            self._rate = float(requests_per_second)
            self._burst = int(burst)
            self._tokens = float(burst)
            self._refilled_at = self._clock()

    def fail_next(
        self,
        kind: FaultKind,
        count: int = 1,
        *,
        path: str | None = None,
        method: str | None = None,
    ) -> None:
        """Inject ``kind`` into the next ``count`` matching requests, ahead of random faults.

        ``path`` is an exact path or an ``fnmatch`` pattern. Scripted faults are consumed in the
        order they were added and ignore the plan's ``only_paths``/``methods`` filter.
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {FAULT_KINDS}")
        if count < 1:
            raise ValueError("count must be >= 1")
        with self._lock:
            self._scripted.append(
                _Scripted(kind, count, path, method.upper() if method is not None else None)
            )

    def clear_scripted(self) -> None:
        """Drop every pending :meth:`fail_next` fault."""
        with self._lock:
            self._scripted.clear()

    @property
    def pending_scripted(self) -> int:
        """How many scripted faults are still to be injected."""
        with self._lock:
            return sum(s.remaining for s in self._scripted)

    def configure(self, config: Mapping[str, Any] | None = None, /, **options: Any) -> None:
        """Change knobs from a mapping and/or keywords (the keys :meth:`from_config` accepts)."""
        merged = {**(config or {}), **options}
        unknown = set(merged) - _CONFIG_KEYS
        if unknown:
            raise ValueError(f"unknown control option(s): {', '.join(sorted(unknown))}")
        if "latency" in merged:
            self.latency = float(merged["latency"])
        if "latency_jitter" in merged:
            self.latency_jitter = float(merged["latency_jitter"])
        if "error_body" in merged:
            self.error_body = merged["error_body"] or default_error_body
        seed = merged.get("seed")
        if "seed" in merged:
            with self._lock:
                self._jitter_rng = random.Random(seed)
        plan_keys = _CONFIG_KEYS - {"latency", "latency_jitter", "error_body", "rate_limit", "burst"}
        given = plan_keys & set(merged)
        if given == {"seed"}:
            with self._lock:
                self._faults.reseed(seed)
        elif given:
            # Fault options replace the plan as a whole; options not given take their defaults.
            self.faults = self._build_plan(merged)
        if "rate_limit" in merged or "burst" in merged:
            rate = merged.get("rate_limit")
            self.rate_limit(float(rate) if rate else None, int(merged.get("burst") or 1))

    @staticmethod
    def _build_plan(options: Mapping[str, Any]) -> FaultPlan:
        extra: dict[str, Any] = {}
        for name in ("slow_seconds", "retry_after", "server_error_statuses"):
            if options.get(name) is not None:
                extra[name] = options[name]
        if options.get("only_paths") is not None:
            extra["only_paths"] = tuple(options["only_paths"])
        if options.get("methods") is not None:
            extra["methods"] = tuple(options["methods"])
        if "slow_seconds" in extra:
            extra["slow_seconds"] = float(extra["slow_seconds"])
        if "retry_after" in extra:
            extra["retry_after"] = int(extra["retry_after"])
        if "server_error_statuses" in extra:
            extra["server_error_statuses"] = tuple(int(s) for s in extra["server_error_statuses"])
        seed = options.get("seed")
        seed = int(seed) if seed is not None else None
        rate = float(options.get("fault_rate") or 0.0)
        kinds = options.get("fault_kinds")
        if isinstance(kinds, str):
            kinds = [k.strip() for k in kinds.split(",") if k.strip()]
        explicit: dict[str, Any] = {k: float(options[k]) for k in FAULT_KINDS if options.get(k) is not None}
        if rate:
            plan = FaultPlan.uniform(
                rate, kinds=cast("Iterable[FaultKind]", kinds or FAULT_KINDS), seed=seed, **extra
            )
            if explicit:
                values: dict[str, Any] = {k: float(getattr(plan, k)) for k in FAULT_KINDS}
                plan = FaultPlan(seed=seed, **(values | explicit), **extra)
            return plan
        return FaultPlan(seed=seed, **explicit, **extra)

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None = None, /, **options: Any) -> FakeControls:
        """Build controls from a dict and/or keywords.

        Keys: ``latency``, ``latency_jitter``, ``seed``, ``fault_rate`` (split evenly over
        ``fault_kinds``, default all kinds), per-kind probabilities (``server_error``, ``slow``, …),
        ``slow_seconds``, ``retry_after``, ``server_error_statuses``, ``only_paths``, ``methods``,
        ``rate_limit`` (requests per second) with ``burst``, and ``error_body``.
        """
        merged = {**(config or {}), **options}
        seed = merged.get("seed")
        controls = cls(seed=int(seed) if seed is not None else None)
        controls.configure(merged)
        return controls

    def reset(self) -> None:
        """Back to defaults: no latency, faults, rate limit, counters or ledger entries."""
        with self._lock:
            self._latency = 0.0
            self._latency_jitter = 0.0
            self._faults = FaultPlan()
            self._scripted.clear()
            self._rate = None
            self._requests.clear()
            self._faults_injected.clear()
            self._throttled = 0
        self.ledger.clear()

    # -- counters ------------------------------------------------------------------------

    @property
    def requests_seen(self) -> dict[tuple[str, str], int]:
        """Requests received per ``(method, path)`` (a snapshot)."""
        with self._lock:
            return dict(self._requests)

    @property
    def total_requests(self) -> int:
        """All requests received (faulted ones included)."""
        with self._lock:
            return sum(self._requests.values())

    def requests_to(self, method: str, path: str) -> int:
        """Requests received for one method and path."""
        with self._lock:
            return self._requests[(method.upper(), path)]

    @property
    def faults_injected(self) -> dict[str, int]:
        """Faults injected per kind, random and scripted (a snapshot)."""
        with self._lock:
            return dict(self._faults_injected)

    @property
    def throttled(self) -> int:
        """Requests refused by the token bucket."""
        with self._lock:
            return self._throttled

    def reset_counters(self) -> None:
        """Zero the request, fault and throttle counters."""
        with self._lock:
            self._requests.clear()
            self._faults_injected.clear()
            self._throttled = 0

    # -- decision (used by the middleware) -----------------------------------------------

    def _take_token(self) -> int | None:
        """Consume a token; return ``None`` if allowed, else the Retry-After seconds."""
        if self._rate is None:
            return None
        now = self._clock()
        elapsed = max(0.0, now - self._refilled_at)
        self._tokens = min(float(self._burst), self._tokens + elapsed * self._rate)
        self._refilled_at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return None
        wait = (1.0 - self._tokens) / self._rate
        return max(1, math.ceil(wait))

    def _take_scripted(self, method: str, path: str) -> FaultKind | None:
        for index, scripted in enumerate(self._scripted):
            if scripted.method is not None and scripted.method != method:
                continue
            if scripted.path is not None and not _path_matches((scripted.path,), path):
                continue
            scripted.remaining -= 1
            if scripted.remaining <= 0:
                del self._scripted[index]
            return scripted.kind
        return None

    def decide(self, method: str, path: str) -> Decision:
        """Count one request and choose what happens to it."""
        method = method.upper()
        with self._lock:
            self._requests[(method, path)] += 1
            delay = self._latency
            if self._latency_jitter:
                delay += self._jitter_rng.uniform(0.0, self._latency_jitter)
            plan = self._faults
            retry_after = self._take_token()
            if retry_after is not None:
                self._throttled += 1
                return Decision(None, delay, 429, retry_after, throttled=True)
            kind = self._take_scripted(method, path)
            if kind is None:
                # Always draw so that a seeded plan gives the same sequence for the same requests.
                drawn = plan.draw()
                if drawn is not None and plan.applies_to(method, path):
                    kind = drawn
            if kind is None:
                return Decision(None, delay)
            self._faults_injected[kind] += 1
            status = 0
            if kind == "server_error":
                status = plan.rng.choice(plan.server_error_statuses)
            elif kind == "rate_limited":
                status = 429
            return Decision(kind, delay, status, plan.retry_after, plan.slow_seconds)

    def __repr__(self) -> str:
        return (
            f"FakeControls(latency={self._latency}, faults={self.faults!r}, "
            f"requests={self.total_requests}, ledger={len(self.ledger)})"
        )


def find_controls(app: Any) -> FakeControls:
    """The :class:`FakeControls` of a fake app (``app.state.controls`` or ``app.controls``)."""
    state = getattr(app, "state", None)
    controls = getattr(state, "controls", None) if state is not None else None
    if controls is None:
        controls = getattr(app, "controls", None)
    if not isinstance(controls, FakeControls):
        raise LookupError(f"{app!r} has no FakeControls")
    return controls


# --------------------------------------------------------------------------------------------
# Middleware


class _DropLogFilter(logging.Filter):
    """Hide uvicorn's error log for a connection broken on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not _is_injected(exc)


def _is_injected(exc: BaseException | None) -> bool:
    if exc is None:
        return False
    if isinstance(exc, InjectedDisconnect):
        return True
    nested = getattr(exc, "exceptions", None)
    if isinstance(nested, tuple) and nested:
        return all(isinstance(e, BaseException) and _is_injected(e) for e in nested)
    return False


_DROP_LOG_FILTER: Final = _DropLogFilter()
_UVICORN_ERROR_LOGGER: Final = "uvicorn.error"


def _install_drop_log_filter() -> None:
    logger = logging.getLogger(_UVICORN_ERROR_LOGGER)
    if _DROP_LOG_FILTER not in logger.filters:
        logger.addFilter(_DROP_LOG_FILTER)


_NO_BODY_STATUSES: Final = frozenset({204, 304})
_STATUS_MESSAGES: Final = {
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


class _TrackedReceive:
    """Wraps ``receive`` to know whether the request body has been read to the end."""

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self.complete = False

    async def __call__(self) -> Message:
        message = await self._receive()
        if message["type"] == "http.disconnect" or not message.get("more_body", False):
            self.complete = True
        return message

    async def drain(self) -> None:
        """Read and discard the rest of the request body, if any."""
        for _ in range(_MAX_RECEIVE_MESSAGES):
            if self.complete:
                return
            await self()


@dataclass
class _Captured:
    start: Message
    body: bytes


class FaultInjectionMiddleware:
    """ASGI middleware applying a fake's latency, rate limit and faults around the wrapped app.

    Place it outermost among the fake's own middleware. ``exempt_paths`` (exact paths or
    ``fnmatch`` patterns) bypass it entirely, e.g. a fake's own control endpoints.
    """

    def __init__(
        self,
        app: ASGIApp,
        controls: FakeControls | None = None,
        *,
        error_body: ErrorBodyFactory | None = None,
        exempt_paths: Iterable[str] = (),
    ) -> None:
        self.app = app
        self.controls = controls if controls is not None else FakeControls()
        self._error_body = error_body
        self._exempt = tuple(exempt_paths)
        _install_drop_log_filter()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (self._exempt and _path_matches(self._exempt, scope["path"])):
            await self.app(scope, receive, send)
            return
        decision = self.controls.decide(scope["method"], scope["path"])
        receive = _TrackedReceive(receive)
        if decision.delay > 0:
            await anyio.sleep(decision.delay)
        if decision.throttled or decision.kind == "rate_limited":
            await self._send_error(send, 429, retry_after=decision.retry_after)
        elif decision.kind is None:
            await self.app(scope, receive, send)
        elif decision.kind == "server_error":
            await self._send_error(send, decision.status)
        elif decision.kind == "malformed":
            await _send_raw(send, 200, _MALFORMED_BODY, [(b"content-type", b"application/json")])
        elif decision.kind == "drop_before":
            start: Message = {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
            await self._break(send, receive, _Captured(start, _DROP_BEFORE_BODY))
        elif decision.kind == "drop_after":
            await self._break(send, receive, await self._capture(scope, receive))
        elif decision.kind == "garbled_after":
            await self._garble(send, await self._capture(scope, receive))
        else:  # slow
            captured = await self._capture(scope, receive)
            if await _sleep_unless_disconnected(decision.slow_seconds, receive):
                return  # the client gave up; nothing left to answer
            await send(captured.start)
            await send({"type": "http.response.body", "body": captured.body, "more_body": False})

    async def _send_error(self, send: Send, status: int, *, retry_after: int | None = None) -> None:
        factory = self._error_body or self.controls.error_body
        message = _STATUS_MESSAGES.get(status, "Error")
        body = json.dumps(dict(factory(status, message)), separators=(",", ":")).encode()
        headers = [(b"content-type", b"application/json")]
        if retry_after is not None:
            headers.append((b"retry-after", str(max(1, int(retry_after))).encode()))
        await _send_raw(send, status, body, headers)

    async def _capture(self, scope: Scope, receive: Receive) -> _Captured:
        start: Message | None = None
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body":
                chunks.append(bytes(message.get("body", b"")))

        await self.app(scope, receive, capture)
        if start is None:
            raise RuntimeError("the wrapped app returned without starting a response")
        return _Captured(start, b"".join(chunks))

    async def _garble(self, send: Send, response: _Captured) -> None:
        """Deliver the handler's answer whole, its body garbled."""
        status = int(response.start["status"])
        if status in _NO_BODY_STATUSES or status < 200:
            status = 200  # a body-less status would hide the garbled body
        headers = [
            (bytes(k), bytes(v))
            for k, v in response.start.get("headers", [])
            if bytes(k).lower() not in (b"content-length", b"transfer-encoding", b"content-type")
        ]
        headers.append((b"content-type", b"application/json"))
        body = response.body[: len(response.body) // 2] + _GARBLE
        await _send_raw(send, status, body, headers)

    async def _break(self, send: Send, receive: _TrackedReceive, response: _Captured) -> None:
        """Start a response promising more bytes than it sends, then raise."""
        _install_drop_log_filter()
        # Read what is left of the request first: closing a socket with unread bytes makes the
        # kernel send a reset, which the client would see as a different error.
        await receive.drain()
        status = int(response.start["status"])
        if status in _NO_BODY_STATUSES or status < 200:
            status = 200  # a body-less status would let the client accept the short response
        headers = [
            (bytes(k), bytes(v))
            for k, v in response.start.get("headers", [])
            if bytes(k).lower() not in (b"content-length", b"transfer-encoding")
        ]
        declared = len(response.body) + _DROP_EXTRA_BYTES
        headers.append((b"content-length", str(declared).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        partial = response.body[: len(response.body) // 2]
        await send({"type": "http.response.body", "body": partial, "more_body": True})
        raise InjectedDisconnect("connection dropped by fault injection")


async def _sleep_unless_disconnected(seconds: float, receive: Receive) -> bool:
    """Sleep ``seconds``; return ``True`` early if the client disconnects meanwhile."""
    disconnected = False
    async with anyio.create_task_group() as group:

        async def watch() -> None:
            nonlocal disconnected
            for _ in range(_MAX_RECEIVE_MESSAGES):
                message = await receive()
                if message["type"] == "http.disconnect":
                    disconnected = True
                    group.cancel_scope.cancel()
                    return
            await anyio.sleep_forever()

        group.start_soon(watch)
        await anyio.sleep(seconds)
        group.cancel_scope.cancel()
    return disconnected


async def _send_raw(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


# --------------------------------------------------------------------------------------------
# Command-line helpers


def add_control_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--latency``, ``--latency-jitter``, ``--fault-rate``, ``--fault-kinds``, ``--seed``,
    ``--slow-seconds``, ``--rate-limit`` and ``--burst`` to a fake's argument parser."""
    group = parser.add_argument_group("fault injection")
    group.add_argument("--latency", type=float, default=0.0, help="seconds added to responses")
    group.add_argument("--latency-jitter", type=float, default=0.0, help="extra random seconds")
    group.add_argument("--fault-rate", type=float, default=0.0, help="fraction of faulty replies")
    group.add_argument(
        "--fault-kinds",
        default=",".join(FAULT_KINDS),
        help=f"comma-separated subset of: {', '.join(FAULT_KINDS)}",
    )
    group.add_argument("--seed", type=int, default=None, help="seed for reproducible faults")
    group.add_argument("--slow-seconds", type=float, default=3.0, help="delay of a slow reply")
    group.add_argument("--rate-limit", type=float, default=0.0, help="requests per second")
    group.add_argument("--burst", type=int, default=10, help="token bucket size")


def controls_from_arguments(
    namespace: argparse.Namespace, *, error_body: ErrorBodyFactory | None = None
) -> FakeControls:
    """Build controls from arguments added by :func:`add_control_arguments`."""
    return FakeControls.from_config(
        latency=namespace.latency,
        latency_jitter=namespace.latency_jitter,
        fault_rate=namespace.fault_rate,
        fault_kinds=namespace.fault_kinds,
        seed=namespace.seed,
        slow_seconds=namespace.slow_seconds,
        rate_limit=namespace.rate_limit,
        burst=namespace.burst,
        error_body=error_body,
    )
