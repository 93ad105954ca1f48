"""Batch changes as a plan, then its execution: the same path for a run, ``--dry-run``,
``--plan FILE`` and ``apply FILE``.

A :class:`Job` says what a batch command changes: it lists candidates, *plans* each one (reads
its state and returns a :class:`Change` with that state, or a :class:`NoChange` with the
reason), and *applies* a change. The frame does the rest:

* planning runs concurrently, without writing; ``--dry-run`` prints the plan, ``--plan FILE``
  saves it (owner-only JSON: who, what, from which state) and sends nothing;
* a real run shows the count and asks before a destructive change (``--yes`` skips the
  question; without a terminal the run is refused unless ``--yes``), then applies every change
  through :func:`~mfa_common.batch.run_batch` with a journal (``--journal``, else an automatic
  one under the tool's state directory) and the progress bar. The journal is locked, and checked
  to be made for this run, before any network call or any write beside it: a run another holds
  exits 75, a journal made for another plan, CSV, command or server exits 74 (it is bound to
  them by a digest in its first line), both having sent nothing;
* ``apply FILE`` executes exactly the saved list: each target's state is read again first, and a
  target whose state differs from the plan's is **skipped** with the reason ``changed since the
  plan (<fields>)`` (per item; the rest of the plan runs). Re-running ``apply FILE`` resumes it
  (its journal is ``FILE.journal`` unless ``--journal`` says otherwise);
* an item whose outcome is unknown (the answer to a write was lost) is settled by
  :meth:`Job.verify` when the API can tell, now or on the resumed run (the state planned before
  the first attempt is kept beside the journal for that); where it cannot and the action is
  idempotent, ``--retry-unknown`` runs it again;
* Ctrl-C prints the summary so far and the exact command that resumes, and exits 130.

A new batch command is a :class:`Job` subclass and a few lines with :meth:`BatchCommands.command`;
a job of an API's ``jobs`` module (a :class:`mfa_common.batch.BatchJob`, usable without the
command line) becomes one through :class:`BatchJobAdapter`.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import time
import typing
from collections.abc import AsyncIterable, Callable, Iterable, Mapping
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import attrs
import typer

from .._files import StateFile
from ..errors import AuthenticationError, InvalidInputError, MfaError, PermissionDeniedError
from .app import State, add_command, flag, report_error, run_command, state_of
from .errors import EXIT_FAILED, EXIT_OK, CliError, describe_error, exit_code_for, exit_code_for_error
from .output import BatchProgressDisplay, emit_json, print_summary, stderr_console, stdout_console
from .prompts import confirm_off_loop
from .session import ApiAdapter, Prepared, Session, open_session, prepare, session_refused
from .settings import Settings, ensure_state_dir

if TYPE_CHECKING:
    # The batch runner loads when a batch runs (never for --help).
    from collections.abc import Awaitable

    from ..batch import BatchJob, BatchSummary, CsvCells, Journal, Skip

__all__ = [
    "PLAN_FORMAT",
    "BatchCommands",
    "BatchJobAdapter",
    "BatchOptions",
    "Change",
    "Job",
    "JobRun",
    "NoChange",
    "read_csv_option",
]

ClientT = TypeVar("ClientT")
ItemT = TypeVar("ItemT")

#: Version of the plan file format.
PLAN_FORMAT = 1
# A plan of many thousand changes is a few MB; far more is not a plan of this tool.
_MAX_PLAN_BYTES = 256 * 1024 * 1024
_STOP_ON = (AuthenticationError, PermissionDeniedError)
# Where a batch keeps the refusal that stopped it (JobRun.context).
_STOPPED_BY = "stopped_by"


@attrs.frozen
class Change:
    """One planned change: ``key`` (the target's id, the journal key), ``who`` (for people),
    ``action`` and ``before``, the target's state the change was planned from (JSON values)."""

    key: str
    who: str
    action: str
    before: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.key, "email": self.who, "action": self.action, "before": self.before}


@attrs.frozen
class NoChange:
    """A candidate that needs no change, and why."""

    key: str
    who: str
    reason: str


@attrs.define
class JobRun(Generic[ClientT]):
    """What a job works with: the open client, the settings, and what :meth:`Job.start` kept."""

    session: Session[ClientT]
    state: State
    context: dict[str, Any] = attrs.field(factory=dict)

    @property
    def client(self) -> ClientT:
        return self.session.client

    @property
    def settings(self) -> Settings | None:
        return self.session.settings


class Job(Generic[ClientT, ItemT]):
    """A batch change (see the module docstring). Class attributes:

    ``action`` names the change (``"remove PIN"``: the same words in the progress bar, the
    dry run, the plan and the summary); ``destructive`` asks for confirmation; ``needs`` are
    the settings a real run needs (asked before the loop starts).
    """

    action: str = ""
    unit: str = "users"
    destructive: bool = True
    needs: tuple[str, ...] = ()

    async def start(self, run: JobRun[ClientT]) -> None:
        """Read what every item needs (the caller's own id, a listing) once."""

    def candidates(self, run: JobRun[ClientT]) -> Iterable[ItemT] | AsyncIterable[ItemT]:
        raise NotImplementedError

    def total(self, run: JobRun[ClientT]) -> int | None:
        """The number of candidates when known (a bar with an ETA)."""
        return None

    def candidate_key(self, item: ItemT) -> str:
        raise NotImplementedError

    async def plan(self, run: JobRun[ClientT], item: ItemT) -> Change | NoChange:
        """Read the candidate's state and decide (raise for a candidate that cannot be handled)."""
        raise NotImplementedError

    async def state(self, run: JobRun[ClientT], change: Change) -> dict[str, Any]:
        """The target's state now, in the form of :attr:`Change.before` (for ``apply``)."""
        raise NotImplementedError

    async def apply(self, run: JobRun[ClientT], change: Change) -> Skip | None:
        """Make the change (a :class:`Skip` when the server says it is not needed)."""
        raise NotImplementedError

    async def verify(self, run: JobRun[ClientT], change: Change) -> bool | None:
        """Whether a change whose answer was lost took effect (None: the API cannot tell).
        ``change.before`` is the state planned before the first attempt."""
        return None


class BatchJobAdapter(Job[ClientT, Any]):
    """A :class:`mfa_common.batch.BatchJob` (an API's ``jobs`` module) run as a batch command.

    ``build(run)`` makes the job once the client is open. The job's read-only check plans each
    item (the state it planned from is the change's ``before``), its write applies the change
    and its ``verify`` settles a lost answer, with the state kept from before the first attempt.
    Applying a saved plan rebuilds each item from its key and checks it again: a target whose
    state moved is skipped as changed since the plan, one the check now leaves alone is skipped
    with the check's reason, and a key the CSV no longer has is skipped as such. ``needs`` are
    the settings a real run needs (asked before the loop starts).
    """

    def __init__(
        self, build: Callable[[JobRun[ClientT]], BatchJob[Any]], *, needs: tuple[str, ...] = ()
    ) -> None:
        self.build = build
        self.needs = needs
        self.job: BatchJob[Any] | None = None
        # What each planned key's check decided in this process: the write, or why none is due.
        self.pending: dict[str, Callable[[], Awaitable[None]] | Skip] = {}
        self.by_key: dict[str, Any] | None = None

    async def start(self, run: JobRun[ClientT]) -> None:
        job = self.job = self.build(run)
        self.action, self.unit = job.name, job.unit
        if job.start is not None:
            await job.start()

    def _job(self) -> BatchJob[Any]:
        assert self.job is not None, "start() builds the job"
        return self.job

    def candidates(self, run: JobRun[ClientT]) -> Iterable[Any] | AsyncIterable[Any]:
        return self._job().items

    def total(self, run: JobRun[ClientT]) -> int | None:
        job = self._job()
        return job.total() if job.total is not None else None

    def candidate_key(self, item: Any) -> str:
        return self._job().key(item)

    def _item(self, key: str) -> Any:
        """The item a saved plan's key stands for (None: the CSV no longer has it)."""
        job = self._job()
        if job.from_key is not None:
            return job.from_key(key)
        if self.by_key is None:
            assert isinstance(job.items, Iterable), "a job whose items are read once needs from_key"
            self.by_key = {job.key(item): item for item in job.items}
        return self.by_key.get(key)

    async def plan(self, run: JobRun[ClientT], item: Any) -> Change | NoChange:
        from ..batch import PlannedSkip, Skip

        job = self._job()
        key = job.key(item)
        decided = await job.decide(item)
        if isinstance(decided, Skip):
            return NoChange(key, decided.who if isinstance(decided, PlannedSkip) else "", decided.reason)
        self.pending[key] = decided.apply
        return Change(key, decided.who, decided.action, _plain(decided.before))

    async def state(self, run: JobRun[ClientT], change: Change) -> dict[str, Any]:
        from ..batch import PlannedSkip, Skip

        item = self._item(change.key)
        if item is None:
            return {"row": "no longer in the CSV"}
        decided = await self._job().decide(item)
        if isinstance(decided, Skip):
            now = decided.before if isinstance(decided, PlannedSkip) else None
            if now is not None and _plain(now) != change.before:
                return _plain(now)  # the frame skips it as changed since the plan
            # Nothing is due any more: apply() skips it with the check's own reason.
            self.pending[change.key] = decided
            return change.before
        self.pending[change.key] = decided.apply
        return _plain(decided.before)

    async def apply(self, run: JobRun[ClientT], change: Change) -> Skip | None:
        from ..batch import Skip

        pending = self.pending.pop(change.key, None)
        if pending is None:
            item = self._item(change.key)
            if item is None:
                return Skip("no longer in the CSV")
            decided = await self._job().decide(item)
            pending = decided if isinstance(decided, Skip) else decided.apply
        if isinstance(pending, Skip):
            return pending
        await pending()
        return None

    async def verify(self, run: JobRun[ClientT], change: Change) -> bool | None:
        item = self._item(change.key)
        return None if item is None else await self._job().verify(item, change.before)


def _plain(value: Mapping[str, Any]) -> dict[str, Any]:
    """``value`` as it reads back from a plan file (JSON), so the plan's state compares equal."""
    plain: dict[str, Any] = json.loads(json.dumps(value, default=str))
    return plain


def read_csv_option(path: Path, parse: Callable[[CsvCells], ItemT]) -> Iterable[ItemT]:
    """The items of the CSV file a command was given (:func:`mfa_common.batch.read_csv`),
    checked whole before anything is sent: a bad row is a usage error naming its line."""
    from ..batch import read_csv

    try:
        return read_csv(path, parse)
    except InvalidInputError as exc:
        raise CliError(str(exc)) from None


@attrs.frozen
class BatchOptions:
    """The options every batch command takes."""

    dry_run: bool = False
    plan: Path | None = None
    yes: bool = False
    concurrency: int = 10
    rate: float | None = None
    journal: Path | None = None
    json_out: bool = False
    retry_unknown: bool = False


def _common_parameters(idempotent: bool) -> list[inspect.Parameter]:
    def option(name: str, annotation: Any, default: Any) -> inspect.Parameter:
        return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)

    params = [
        option("dry_run", bool, flag("List what would change; send no write.", "--dry-run")),
        option(
            "plan",
            typing.Optional[Path],  # noqa: UP045 - typer reads the annotation at run time
            typer.Option(
                None,
                "--plan",
                dir_okay=False,
                help="Write the exact list of changes to this new file and send nothing; "
                "run it with  apply FILE.",
            ),
        ),
        option("yes", bool, flag("Do not ask before changing (needed without a terminal).", "--yes", "-y")),
        option(
            "concurrency",
            int,
            typer.Option(10, "--concurrency", min=1, max=500, help="Users processed at once."),
        ),
        option(
            "rate",
            typing.Optional[float],  # noqa: UP045
            typer.Option(None, "--rate", min=0.1, help="At most this many users per second."),
        ),
        option(
            "journal",
            typing.Optional[Path],  # noqa: UP045
            typer.Option(None, "--journal", dir_okay=False, help="Journal file: re-run with it to resume."),
        ),
        option("json_out", bool, flag("Print a JSON summary on stdout (no progress bar).", "--json")),
    ]
    if idempotent:
        params.append(
            option(
                "retry_unknown",
                bool,
                flag(
                    "Run again the users whose outcome is unknown (safe: this change is idempotent).",
                    "--retry-unknown",
                ),
            )
        )
    return params


_COMMON_NAMES = {f.name for f in attrs.fields(BatchOptions)}


def _json_value(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Path):
        return str(value)
    return value


def _coerce(hint: Any, value: Any) -> Any:
    """A plan's JSON parameter back into the type the job factory declares."""
    if value is None:
        return None
    candidates = typing.get_args(hint) or (hint,)
    for kind in candidates:
        if isinstance(kind, type) and issubclass(kind, Enum):
            return kind(value)
        if kind is Path:
            return Path(value)
    return value


@attrs.frozen
class _Entry:
    factory: Callable[..., Job[Any, Any]]
    hints: dict[str, Any]
    idempotent: bool


class BatchCommands(Generic[ClientT]):
    """The batch commands of one tool, and its ``apply`` command."""

    def __init__(self, adapter: ApiAdapter[ClientT]) -> None:
        self.adapter = adapter
        self.jobs: dict[str, _Entry] = {}

    def command(
        self, group: typer.Typer, name: str, *, path: str, idempotent: bool
    ) -> Callable[[Callable[..., Job[ClientT, Any]]], Callable[..., Job[ClientT, Any]]]:
        """Register ``factory`` (its parameters are typer options; it returns the :class:`Job`)
        as the command ``name`` of ``group``, with the common batch options. ``path`` is the
        command's full name (``"mfa reset"``), recorded in plans. ``idempotent`` offers
        ``--retry-unknown``."""

        def decorator(factory: Callable[..., Job[ClientT, Any]]) -> Callable[..., Job[ClientT, Any]]:
            hints = typing.get_type_hints(factory)
            own = [
                p.replace(annotation=hints[p.name], kind=inspect.Parameter.KEYWORD_ONLY)
                for p in inspect.signature(factory).parameters.values()
            ]
            ctx = inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context)
            params = [ctx, *own, *_common_parameters(idempotent)]
            self.jobs[path] = _Entry(factory, hints, idempotent)

            def run(ctx: typer.Context, **kwargs: Any) -> None:
                options = BatchOptions(**{k: kwargs.pop(k) for k in list(kwargs) if k in _COMMON_NAMES})
                job = factory(**kwargs)
                params = {k: _json_value(v) for k, v in kwargs.items()}
                inputs = {k: _digest_of_file(v) for k, v in kwargs.items() if isinstance(v, Path)}
                self.run(state_of(ctx), job, options, path=path, params=params, inputs=inputs)

            run.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
            run.__annotations__ = {p.name: p.annotation for p in params}
            run.__doc__ = factory.__doc__
            run.__name__ = factory.__name__
            add_command(group, name, run)
            return factory

        return decorator

    def add_apply(self, app: typer.Typer) -> None:
        """The ``apply FILE`` command."""
        commands = self

        def apply(
            ctx: typer.Context,
            plan_file: Path = typer.Argument(
                ..., exists=True, dir_okay=False, help="A plan made with --plan."
            ),
            yes: bool = flag("Do not ask before changing (needed without a terminal).", "--yes", "-y"),
            concurrency: int = typer.Option(
                10, "--concurrency", min=1, max=500, help="Users processed at once."
            ),
            rate: float | None = typer.Option(
                None, "--rate", min=0.1, help="At most this many users per second."
            ),
            journal: Path | None = typer.Option(
                None, "--journal", dir_okay=False, help="Journal file (default: FILE.journal)."
            ),
            json_out: bool = flag("Print a JSON summary on stdout (no progress bar).", "--json"),
            retry_unknown: bool = flag(
                "Run again the users whose outcome is unknown (only for idempotent changes).",
                "--retry-unknown",
            ),
        ) -> None:
            """Apply a plan made with --plan, exactly: a user whose state changed since is skipped."""
            state = state_of(ctx)
            document = _read_plan(plan_file, state.spec.name)
            entry = commands.jobs.get(document["command"])
            if entry is None:
                raise CliError(f"{plan_file}: this tool has no command {document['command']!r}")
            if retry_unknown and not entry.idempotent:
                raise CliError(f"--retry-unknown is not offered for {document['command']} (not idempotent)")
            params = {k: _coerce(entry.hints.get(k), v) for k, v in document["params"].items()}
            job = entry.factory(**params)
            changes = [
                Change(str(c["id"]), str(c.get("email") or ""), str(c["action"]), dict(c.get("before") or {}))
                for c in document["changes"]
            ]
            options = BatchOptions(
                yes=yes,
                concurrency=concurrency,
                rate=rate,
                journal=journal or plan_file.with_name(plan_file.name + ".journal"),
                json_out=json_out,
                retry_unknown=retry_unknown,
            )
            commands.run(
                state, job, options, path=document["command"], params={}, planned=(document, changes)
            )

        add_command(app, "apply", apply)

    # ----------------------------------------------------------------- running

    def run(
        self,
        state: State,
        job: Job[ClientT, Any],
        options: BatchOptions,
        *,
        path: str,
        params: dict[str, Any],
        inputs: dict[str, str] | None = None,
        planned: tuple[dict[str, Any], list[Change]] | None = None,
    ) -> None:
        if options.dry_run and options.plan is not None:
            raise CliError("give --dry-run or --plan, not both")
        writes = not options.dry_run and options.plan is None

        journal: Journal | None = None
        earlier: dict[str, dict[str, Any]] = {}
        held = contextlib.ExitStack()

        def before_any_request(state: State) -> None:
            """Local checks, with the server's URL known and before anything is sent: the plan is
            for this server, and a run that writes holds its journal (locked, made for this run)
            and can read the state kept beside it."""
            nonlocal journal, earlier
            if planned is not None and planned[0]["url"] != state.url:
                raise CliError(f"the plan is for {planned[0]['url']}, not {state.url}")
            if writes:
                from ..batch import Journal

                assert state.url is not None  # prepare() sets it before this check
                made_for = _made_for(state, path, state.url, params, inputs or {}, planned)
                journal = Journal(options.journal or _auto_journal(state, path), binding=made_for)
                held.enter_context(journal.hold())
                earlier = _earlier_states(journal)

        with held:
            prepared = prepare(
                state, self.adapter, needs=job.needs if writes else (), preflight=before_any_request
            )
            self._run(state, job, options, prepared, path, params, planned, journal, earlier)

    def _run(
        self,
        state: State,
        job: Job[ClientT, Any],
        options: BatchOptions,
        prepared: Prepared,
        path: str,
        params: dict[str, Any],
        planned: tuple[dict[str, Any], list[Change]] | None,
        journal: Journal | None,
        earlier: dict[str, dict[str, Any]],
    ) -> None:
        adapter = self.adapter

        async def main() -> int:
            code = await work()
            # A refusal that stopped the batch (401, 403) ends with the one-line error too.
            stopped = context.get(_STOPPED_BY)
            if stopped is None:
                return code
            if isinstance(stopped, AuthenticationError) and not isinstance(stopped, MfaError):
                stopped = session_refused(state, prepared)
            report_error(stopped, state)
            return exit_code_for_error(stopped)

        context: dict[str, Any] = {}

        async def work() -> int:
            async with open_session(state, adapter, prepared) as session:
                run = JobRun(session=session, state=state, context=context)
                await job.start(run)
                if planned is None:
                    outcome = await _plan(run, job, options)
                    if options.dry_run:
                        return _print_dry_run(job, outcome, options.json_out)
                    if options.plan is not None:
                        return _write_plan(state, job, outcome, options.plan, path, params, prepared.url)
                    changes = outcome.changes
                else:
                    outcome = _Planned([], [], [], None)
                    changes = planned[1]
                assert journal is not None  # a run that writes holds one
                settled = _settled_in_journal(journal, changes)
                if len(changes) > settled and job.destructive:
                    count = len(changes) - settled
                    already = f" ({settled} already done in the journal)" if settled else ""
                    await confirm_off_loop(
                        state.prompter,
                        f"This will {job.action} for {count} {job.unit if count != 1 else job.unit[:-1]} "
                        f"on {prepared.url}{already}.",
                        yes=options.yes,
                    )
                summary = await _execute(
                    run, job, changes, options, journal, earlier, checked=planned is not None
                )
            return _report(
                state, job, _merge(outcome.summary, summary), options, Path(journal.path), planned is not None
            )

        run_command(main, state)


@attrs.define
class _Planned:
    changes: list[Change]
    skipped: list[NoChange]
    failed: list[tuple[str, str]]
    summary: BatchSummary | None


async def _plan(run: JobRun[Any], job: Job[Any, Any], options: BatchOptions) -> _Planned:
    from ..batch import Skip, run_batch

    outcome = _Planned([], [], [], None)

    async def one(item: Any) -> Skip | None:
        try:
            decision = await job.plan(run, item)
        except Exception as exc:
            outcome.failed.append((job.candidate_key(item), describe_error(exc, server=run.session.url)))
            if isinstance(exc, _STOP_ON):
                run.context.setdefault(_STOPPED_BY, exc)
            raise
        if isinstance(decision, NoChange):
            outcome.skipped.append(decision)
            return Skip(decision.reason)
        outcome.changes.append(decision)
        return None

    display = BatchProgressDisplay(
        f"checking {job.unit}", total=job.total(run), enabled=not options.json_out, console=stderr_console()
    )

    def interrupted() -> None:
        stderr_console().print(f"Interrupted while checking {job.unit}: nothing was changed.", markup=False)

    run.state.on_interrupt.append(interrupted)
    with display:
        outcome.summary = await run_batch(
            job.candidates(run),
            one,
            key=job.candidate_key,
            concurrency=options.concurrency,
            on_progress=display,
            stop_on=_STOP_ON,
        )
    run.state.on_interrupt.remove(interrupted)
    outcome.changes.sort(key=lambda c: c.key)
    outcome.skipped.sort(key=lambda c: c.key)
    return outcome


def _print_dry_run(job: Job[Any, Any], outcome: _Planned, json_out: bool) -> int:
    assert outcome.summary is not None
    if json_out:
        emit_json(
            {
                "dry_run": True,
                "action": job.action,
                "count": len(outcome.changes),
                "checked": outcome.summary.total,
                "would_change": [c.as_dict() for c in outcome.changes],
                "would_skip": [{"id": s.key, "email": s.who, "reason": s.reason} for s in outcome.skipped],
                "skipped_by_reason": dict(outcome.summary.skipped_by_reason),
                "failed": [{"key": k, "message": m} for k, m in outcome.failed],
                "errors": outcome.summary.failed + outcome.summary.unknown,
            }
        )
    else:
        from rich.table import Table

        table = Table(title=f"Dry run: {job.action} (nothing is sent)", title_justify="left")
        table.add_column("id")
        table.add_column("email")
        table.add_column("plan")
        for change in outcome.changes:
            table.add_row(change.key, change.who or "-", f"would {change.action}")
        for skip in outcome.skipped:
            table.add_row(skip.key, skip.who or "-", f"skip: {skip.reason}")
        for key, message in outcome.failed:
            table.add_row(key, "-", f"would fail: {message}")
        out = stdout_console()
        out.print(table)
        out.print(
            f"{len(outcome.changes)} would change, {len(outcome.skipped)} would be skipped, "
            f"{len(outcome.failed)} would fail (of {outcome.summary.total} checked)."
        )
    return EXIT_OK if outcome.summary.ok else EXIT_FAILED


def _write_plan(
    state: State,
    job: Job[Any, Any],
    outcome: _Planned,
    path: Path,
    command: str,
    params: dict[str, Any],
    url: str,
) -> int:
    document = {
        "format": PLAN_FORMAT,
        "tool": state.spec.name,
        "command": command,
        "url": url,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "action": job.action,
        "params": params,
        "changes": [c.as_dict() for c in outcome.changes],
        "not_changed": [{"id": s.key, "email": s.who, "reason": s.reason} for s in outcome.skipped],
        "failed": [{"key": k, "message": m} for k, m in outcome.failed],
    }
    try:
        _plan_file(path).create((json.dumps(document, indent=2) + "\n").encode())
    except FileExistsError:
        raise CliError(f"{path} exists already: choose a new file for the plan") from None
    err = stderr_console()
    err.print(
        f"Plan written to {path}: {len(outcome.changes)} to {job.action}, {len(outcome.skipped)} unchanged, "
        f"{len(outcome.failed)} failed to check. Nothing was sent.",
        markup=False,
    )
    err.print(f"Apply it with:  {state.spec.name} apply {path}", markup=False)
    assert outcome.summary is not None
    return EXIT_OK if not outcome.failed else EXIT_FAILED


def _plan_file(path: Path) -> StateFile:
    return StateFile(path, what="the plan", damaged="make a new plan with --plan")


def _read_plan(path: Path, tool: str) -> dict[str, Any]:
    """The plan at ``path``: a state file (owner-only, never through a link) of this format."""
    file = _plan_file(path)
    document = file.read_json(max_bytes=_MAX_PLAN_BYTES)
    if document is None:
        raise CliError(f"{path} is not a readable plan (it does not exist)")
    if not isinstance(document, dict) or "format" not in document:
        raise file.fail("is not a plan")
    if document["format"] != PLAN_FORMAT:
        raise file.unknown_format(document["format"], PLAN_FORMAT)
    if document.get("tool") != tool:
        raise CliError(f"{path} is a plan of {document.get('tool')!r}, not of {tool}")
    changes = document.get("changes")
    if not isinstance(changes, list) or not all(isinstance(c, dict) and "id" in c for c in changes):
        raise file.fail("is damaged: the list of changes")
    if not isinstance(document.get("params"), dict) or not isinstance(document.get("command"), str):
        raise file.fail("is damaged: the command or its parameters are missing")
    if not isinstance(document.get("url"), str):
        raise file.fail("is damaged: the server URL is missing")
    return document


def _settled_in_journal(journal: Journal, changes: list[Change]) -> int:
    """How many of ``changes`` the journal of a resumed run has as done (or skipped): the run
    passes over them, so the confirmation counts only the rest."""
    from ..batch import ItemState

    states = journal.read()
    return sum(1 for c in changes if states.get(c.key) in (ItemState.DONE, ItemState.SKIPPED))


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def _digest_of_file(path: Path) -> str:
    """A digest of an input file's content (a CSV), or of its absence."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    except OSError as exc:  # the job reports the file itself; the digest only tells runs apart
        return f"unreadable: {exc.errno}"
    return "sha256:" + digest.hexdigest()


def _made_for(
    state: State,
    command: str,
    url: str,
    params: dict[str, Any],
    inputs: dict[str, str],
    planned: tuple[dict[str, Any], list[Change]] | None,
) -> str:
    """What a journal is bound to: the plan applied (its command, server, parameters and
    changes), or the command run, its server, parameters and the content of its input files.
    A run of anything else on the same journal is refused instead of taking its keys as done."""
    if planned is not None:
        document = planned[0]
        return _digest({"plan": {k: document.get(k) for k in _PLAN_IDENTITY}})
    return _digest(
        {"tool": state.spec.name, "command": command, "url": url, "params": params, "inputs": inputs}
    )


# What makes two plans the same plan (not when it was made, nor its notes on unchanged targets).
_PLAN_IDENTITY = ("tool", "command", "url", "params", "changes")


def _before_file(journal: Journal) -> StateFile:
    return StateFile(f"{journal.path}.before.json", what="the state kept beside the journal")


def _earlier_states(journal: Journal) -> dict[str, dict[str, Any]]:
    """Each target's state from before its first attempt, kept beside the journal by an earlier
    run (a resumed run verifies an unknown outcome against it); read before anything is sent."""
    file = _before_file(journal)
    loaded = file.read_json(max_bytes=_MAX_PLAN_BYTES)
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise file.fail("is not a map of states", "move it away (a resumed run then verifies from the plan)")
    return {str(k): v for k, v in loaded.items() if isinstance(v, dict)}


def _planned_beside(
    journal: Journal, changes: list[Change], earlier: dict[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """Keep each target's state from before its first attempt beside the journal (owner-only):
    ``earlier`` (from a previous run) wins over this run's plan. Returns it by key."""
    merged = {c.key: c.before for c in changes}
    merged.update({k: v for k, v in earlier.items() if k in merged})
    _before_file(journal).replace_json(merged)
    return merged


def _auto_journal(state: State, command: str) -> Path:
    folder = ensure_state_dir(ensure_state_dir(state.state_dir()) / "journals")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return folder / f"{command.replace(' ', '-')}-{stamp}.journal"


async def _execute(
    run: JobRun[Any],
    job: Job[Any, Any],
    changes: list[Change],
    options: BatchOptions,
    journal: Journal,
    earlier: dict[str, dict[str, Any]],
    *,
    checked: bool,
) -> BatchSummary:
    from ..batch import Skip, run_batch

    state = run.state
    before = _planned_beside(journal, changes, earlier)

    async def operation(change: Change) -> Skip | None:
        try:
            if checked:
                now = await job.state(run, change)
                if now != change.before:
                    fields = sorted(k for k in {*now, *change.before} if now.get(k) != change.before.get(k))
                    return Skip(f"changed since the plan ({', '.join(fields)})")
            return await job.apply(run, change)
        except _STOP_ON as exc:
            run.context.setdefault(_STOPPED_BY, exc)
            raise

    async def verify(change: Change) -> bool | None:
        return await job.verify(run, attrs.evolve(change, before=before.get(change.key, change.before)))

    display = BatchProgressDisplay(
        job.action, total=len(changes), enabled=not options.json_out, console=stderr_console()
    )

    def interrupted() -> None:
        progress = display.last
        err = stderr_console()
        if progress is not None:
            err.print(
                f"Interrupted: {progress.done} done, {progress.failed} failed, {progress.unknown} unknown, "
                f"{progress.skipped} skipped of {len(changes)}; a write cut off is checked on resume.",
                markup=False,
            )
        resume = state.command_line(drop=("--journal", "--plan"), add=("--journal", journal.path))
        err.print(f"Resume with:  {resume}", markup=False)

    state.on_interrupt.append(interrupted)
    with display:
        summary = await run_batch(
            changes,
            operation,
            key=lambda c: c.key,
            concurrency=options.concurrency,
            rate=options.rate,
            journal=journal,
            on_progress=display,
            verify_unknown=verify,
            retry_unknown=options.retry_unknown,
            stop_on=_STOP_ON,
        )
    state.on_interrupt.remove(interrupted)
    return summary


def _merge(planning: BatchSummary | None, execution: BatchSummary) -> BatchSummary:
    """One summary: the planning's skips and failures with the execution's outcomes."""
    from ..batch import BatchSummary, FailureReason

    if planning is None:
        return execution
    failures: dict[str, FailureReason] = dict(execution.failures_by_reason)
    for reason, group in planning.failures_by_reason.items():
        if reason in failures:
            mine = failures[reason]
            failures[reason] = FailureReason(
                reason,
                mine.count + group.count,
                (mine.example_keys + group.example_keys)[:5],
                mine.example_message,
            )
        else:
            failures[reason] = group
    skipped = dict(execution.skipped_by_reason)
    for reason, count in planning.skipped_by_reason.items():
        skipped[reason] = skipped.get(reason, 0) + count
    elapsed = planning.elapsed + execution.elapsed
    total = execution.total + planning.skipped + planning.failed + planning.unknown
    return BatchSummary(
        total=total,
        done=execution.done,
        failed=execution.failed + planning.failed,
        skipped=execution.skipped + planning.skipped,
        unknown=execution.unknown + planning.unknown,
        failures_by_reason=failures,
        skipped_by_reason=skipped,
        elapsed=elapsed,
        throughput=total / elapsed if elapsed > 0 else 0.0,
        stopped=execution.stopped or planning.stopped,
    )


def _report(
    state: State,
    job: Job[Any, Any],
    summary: BatchSummary,
    options: BatchOptions,
    journal: Path,
    applied: bool,
) -> int:
    if options.json_out:
        emit_json({"action": job.action, "ok": summary.ok, "journal": str(journal), **summary.as_dict()})
    else:
        print_summary(stdout_console(), summary, title=job.action)
        if not summary.ok:
            resume = state.command_line(drop=("--journal",), add=("--journal", str(journal)))
            err = stderr_console()
            err.print(f"Re-run to retry what failed:  {resume}", markup=False)
            if summary.unknown:
                err.print(
                    "Users whose outcome is unknown are checked again on the re-run, "
                    "where the server can tell.",
                    markup=False,
                )
    return exit_code_for(summary)
