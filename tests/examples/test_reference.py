"""The API reference reads like httpx's, openai's and stripe's: Google-style docstrings with a
parameters section for every public constructor and method it shows, each client's groups under
the client, and no internals.

What the reference shows is read from its pages (``::: object`` and their ``members:`` lists)
and from the mkdocstrings options of mkdocs.yml; the docstrings are parsed as mkdocstrings
parses them (griffe, Google style). The built site itself is checked in ``test_docs_site.py``.
"""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path
from typing import Any

import attrs
import pytest
import yaml

griffe = pytest.importorskip("griffe", reason="needs the docs extra")

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "docs" / "reference"

#: The login hooks and plumbing of the auth backends and the requestor: never in the reference.
INTERNALS = {
    "login_flow",
    "is_rejection",
    "apply",
    "acquire",
    "release",
    "used",
    "is_expired",
    "provider_for",
    "run_login",
    "bind",
    "map_error",
    "parse_error_body",
    "build",
    "send",
    "within_deadline",
}

#: What must have a parameters section for each of its parameters: the clients, their groups
#: (and sub-groups), the options, the retry policy, the login backends users construct, the
#: code providers, the recovery-code store, TOTP, the enrolment helper and the fakes.
DOCUMENTED = [
    "quatrix_async.QuatrixClient",
    "quatrix_async.api_session.SessionAPI",
    "quatrix_async.api_profile.ProfileAPI",
    "quatrix_async.api_mfa.MfaAPI",
    "quatrix_async.api_users.UsersAPI",
    "quatrix_async.auth.QuatrixSessionAuth",
    "metalcloud_async.MetalCloudClient",
    "metalcloud_async.api_session.SessionAPI",
    "metalcloud_async.api_user.UserAPI",
    "metalcloud_async.api_users.UsersAPI",
    "metalcloud_async.api_users_limits.UserLimitsAPI",
    "metalcloud_async.api_users_delegates.UserDelegatesAPI",
    "metalcloud_async.api_users_permissions.UserPermissionsAPI",
    "metalcloud_async.api_users_ssh_keys.UserSshKeysAPI",
    "metalcloud_async.auth.MetalCloudLoginAuth",
    "metalcloud_async.auth.MetalCloudApiKeyAuth",
    "mfa_common.xmfa.XMfaClient",
    "mfa_common.xmfa.api_session.SessionAPI",
    "mfa_common.xmfa.api_mfa.MfaAPI",
    "mfa_common.xmfa.api_user.UserAPI",
    "mfa_common.xmfa.XMfaTokenAuth",
    "mfa_common.xmfa.enrol_totp",
    "mfa_common.client.BaseClient",
    "mfa_common.options.ClientOptions",
    "mfa_common.options.RequestOptions",
    "mfa_common.retry.RetryPolicy",
    "mfa_common.totp.Totp",
    "mfa_common.code_providers.TotpCodeProvider",
    "mfa_common.code_providers.RecoveryCodeProvider",
    "mfa_common.code_providers.CallbackCodeProvider",
    "mfa_common.code_providers.StaticCodeProvider",
    "mfa_common.recovery_codes.RecoveryCodeStore",
    "mfa_common.testing.serve",
    "quatrix_async.testing.QuatrixFake",
    "metalcloud_async.testing.MetalCloudFake",
    "mfa_common.xmfa.testing.XMfaFake",
    "mfa_common.requestor.Requestor",
    "mfa_common.auth.ApiKeyAuth",
    "mfa_common.auth.BearerTokenAuth",
    "mfa_common.auth.BasicAuth",
    "mfa_common.batch.run_batch",
    "mfa_common.batch.Journal",
    "mfa_common.batch.RateLimiter",
    "mfa_common.batch.Skip",
    "mfa_common.batch.describe_failure",
    "mfa_common.batch.is_outcome_unknown",
    "mfa_common.batch.BatchProgress",
    "mfa_common.batch.BatchSummary",
    "mfa_common.batch.FailureReason",
    "mfa_common.batch.BatchJob",
    "mfa_common.batch.PlannedChange",
    "mfa_common.batch.PlannedSkip",
    "mfa_common.batch.BatchJobResult",
    "mfa_common.batch.run_batch_job",
    "mfa_common.batch.read_csv",
    "mfa_common.batch.CsvRowError",
    "mfa_common.batch.CsvCells",
    "quatrix_async.jobs.set_mfa_job",
    "quatrix_async.jobs.reset_mfa_job",
    "quatrix_async.jobs.remove_mfa_job",
    "quatrix_async.jobs.parse_user_ref",
    "quatrix_async.jobs.UserRef",
    "quatrix_async.jobs.MfaTarget",
    "metalcloud_async.jobs.force_reenrolment_job",
    "metalcloud_async.jobs.create_users_job",
    "metalcloud_async.jobs.add_ssh_keys_job",
    "metalcloud_async.jobs.set_limits_job",
    "metalcloud_async.jobs.parse_user_row",
    "metalcloud_async.jobs.parse_new_user_row",
    "metalcloud_async.jobs.parse_ssh_key_row",
    "metalcloud_async.jobs.parse_limits_row",
    "metalcloud_async.jobs.UserRow",
    "metalcloud_async.jobs.NewUserRow",
    "metalcloud_async.jobs.SshKeyRow",
    "metalcloud_async.jobs.LimitsRow",
]

#: Each client, the groups it must list, and its reference page.
CLIENTS = {
    "quatrix_async.QuatrixClient": (("session", "profile", "mfa", "users"), "quatrix_async.md"),
    "metalcloud_async.MetalCloudClient": (("session", "user", "users"), "metalcloud_async.md"),
    "mfa_common.xmfa.XMfaClient": (("session", "mfa", "user"), "xmfa.md"),
}


class _Loader(yaml.SafeLoader):
    """mkdocs.yml may hold ``!!python/name:`` tags; read them as plain strings."""


_Loader.add_multi_constructor("tag:yaml.org,2002:python/", lambda loader, suffix, node: str(node.value))


def _handler_options() -> dict[str, Any]:
    with (ROOT / "mkdocs.yml").open(encoding="utf-8") as handle:
        config = yaml.load(handle, Loader=_Loader)  # noqa: S506 - SafeLoader subclass
    plugin = next(p["mkdocstrings"] for p in config["plugins"] if isinstance(p, dict) and "mkdocstrings" in p)
    options: dict[str, Any] = plugin["handlers"]["python"]["options"]
    return options


def _resolve(path: str) -> Any:
    parts = path.split(".")
    for split in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for attribute in parts[split:]:
            obj = getattr(obj, attribute)
        return obj
    raise LookupError(path)


def rendered() -> dict[str, dict[str, Any]]:
    """Every ``::: object`` of the reference pages with its options (``members`` and the rest)."""
    found: dict[str, dict[str, Any]] = {}
    for page in sorted(REFERENCE.glob("*.md")):
        text = page.read_text(encoding="utf-8")
        for match in re.finditer(r"^::: (\S+)\n((?:    .*\n|\n)*)", text, flags=re.M):
            block = match[2].strip("\n")
            options = (yaml.safe_load(block) or {}).get("options", {}) if block.strip() else {}
            found[match[1]] = {**options, "page": page.name}
    return found


def _public_methods(cls: type, members: list[str] | None) -> dict[str, Any]:
    names = members if members is not None else [n for n in vars(cls) if not n.startswith("_")]
    methods = {}
    for name in names:
        value = inspect.getattr_static(cls, name, None)
        if isinstance(value, (staticmethod, classmethod)):
            value = value.__func__
        if inspect.isfunction(value):
            methods[name] = value
    return methods


def _parameters(function: Any) -> list[str]:
    signature = inspect.signature(function)
    return [
        name
        for name, p in signature.parameters.items()
        if name not in ("self", "cls") and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]


def _documented(
    docstring: str | None, kinds: tuple[str, ...] = ("parameters",)
) -> tuple[set[str], list[str]]:
    """The names a Google-style docstring's sections of ``kinds`` document (its Args section,
    unless told), and the section kinds."""
    if not docstring:
        return set(), []
    sections = griffe.Docstring(inspect.cleandoc(docstring)).parse("google", warnings=False)
    names = {p.name for s in sections if s.kind.value in kinds for p in s.value}
    return names, [s.kind.value for s in sections]


def _constructor_parameters(cls: type) -> list[str]:
    init = cls.__init__
    if init is object.__init__:
        return []
    return _parameters(init)


def missing_parameters(path: str, options: dict[str, Any] | None = None) -> list[str]:
    """``path``'s parameters that its docstrings do not document (empty: all are), for what the
    reference shows of it (``options``: its ``members``, and whether its constructor is shown)."""
    options = options or {}
    obj = _resolve(path)
    problems: list[str] = []
    if inspect.isclass(obj):
        if options.get("merge_init_into_class", True):  # else no constructor is shown (a group)
            # An attrs model's constructor takes its attributes: an Attributes section does.
            kinds = ("parameters", "attributes") if attrs.has(obj) else ("parameters",)
            documented, _ = _documented(obj.__doc__, kinds)
            problems += [f"{path}(): {p}" for p in _constructor_parameters(obj) if p not in documented]
        for name, method in _public_methods(obj, options.get("members")).items():
            names, _ = _documented(method.__doc__)
            problems += [f"{path}.{name}(): {p}" for p in _parameters(method) if p not in names]
    else:
        names, _ = _documented(obj.__doc__)
        problems += [f"{path}(): {p}" for p in _parameters(obj) if p not in names]
    return problems


# --------------------------------------------------------------------------- the options


def test_the_reference_is_google_style_tables_with_formatted_separate_signatures() -> None:
    options = _handler_options()
    assert options["docstring_style"] == "google"
    assert options["docstring_section_style"] == "table"
    assert options["separate_signature"] is True and options["show_signature_annotations"] is True
    assert 60 <= options["line_length"] <= 100
    assert "!^_" in options["filters"] and options["show_submodules"] is False
    # Formatting a signature needs ruff (or black) where the site is built: the docs extra.
    import tomllib

    docs_extra = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "optional-dependencies"
    ]["docs"]
    assert any(dep.startswith(("ruff", "black")) for dep in docs_extra), docs_extra


# --------------------------------------------------------------------------- the docstrings


@pytest.mark.parametrize("path", DOCUMENTED)
def test_every_parameter_of_what_the_reference_shows_is_documented(path: str) -> None:
    missing = missing_parameters(path, rendered().get(path))
    assert not missing, "\n".join(missing)


def test_everything_that_must_have_parameters_sections_is_in_the_reference() -> None:
    shown = rendered()
    for path in DOCUMENTED:
        owner, name = path.rsplit(".", 1)
        members = shown[owner].get("members") if owner in shown else []
        listed = path in shown or (owner in shown and (members in (None, True) or name in members))
        assert listed, f"{path} is not in the reference"


def test_the_check_catches_an_undocumented_parameter() -> None:
    class Group:
        async def get(self, user_id: int, *, options: object = None) -> None:
            """Read one.

            Args:
                user_id: Whose.
            """

    names, kinds = _documented(Group.get.__doc__)
    assert names == {"user_id"} and "parameters" in kinds
    assert [p for p in _parameters(Group.get) if p not in names] == ["options"]


# --------------------------------------------------------------------------- what is shown


def test_each_client_lists_its_groups_and_each_group_is_rendered_under_it() -> None:
    shown = rendered()
    for client, (groups, page) in CLIENTS.items():
        options = shown[client]
        assert options["page"] == page
        members = options.get("members") or []
        for group in groups:
            assert group in members, f"{client} does not list client.{group}"
        text = (REFERENCE / page).read_text(encoding="utf-8")
        for group in groups:
            assert f'heading: "client.{group}' in text, f"{page}: no section for client.{group}"


def _shown_members(obj: Any, options: dict[str, Any]) -> set[str]:
    members = options.get("members")
    if members is not None:
        return set(members or ())
    if options.get("inherited_members"):
        return {n for n in dir(obj) if not n.startswith("_")}
    return {n for n in vars(obj) if not n.startswith("_")}


def test_no_internal_is_rendered() -> None:
    for path, options in rendered().items():
        obj = _resolve(path)
        classes = [(path, obj, options)]
        if inspect.ismodule(obj):
            members = options.get("members")
            names = members if members is not None else getattr(obj, "__all__", ())
            names = names or ()  # members: false shows none
            classes = [
                (f"{path}.{n}", getattr(obj, n), {}) for n in names if inspect.isclass(getattr(obj, n))
            ]
        for where, cls, shown in classes:
            if inspect.isclass(cls):
                # An attrs model's field is data (PlannedChange.apply), not a login hook.
                fields = {f.name for f in attrs.fields(cls)} if attrs.has(cls) else set()
                leaked = (_shown_members(cls, shown) - fields) & INTERNALS
                assert not leaked, f"{options['page']}: {where} shows {sorted(leaked)}"
