"""The public surface every SDK package shares: the error hierarchy, the code providers and the
QR helpers, importable from each package and naming the very same objects."""

from __future__ import annotations

import importlib
import inspect
import io
import sys
from types import ModuleType

import pytest
import segno

import mfa_common
from mfa_common import errors, public_api
from mfa_common.qr import print_qr, render_qr

PACKAGES = ["mfa_common", "quatrix_async", "metalcloud_async", "mfa_common.xmfa"]


def _error_classes() -> set[type[BaseException]]:
    found: set[type[BaseException]] = set()
    stack: list[type[BaseException]] = [errors.MfaSdkError]
    while stack:
        cls = stack.pop()
        if cls.__module__ == errors.__name__ and cls not in found:
            found.add(cls)
        stack.extend(cls.__subclasses__())
    return found


def test_the_shared_list_holds_the_whole_core_hierarchy_and_every_code_provider() -> None:
    names = set(public_api.__all__)
    assert {cls.__name__ for cls in _error_classes()} <= names
    providers = importlib.import_module("mfa_common.code_providers")
    provider_classes = {
        name
        for name, obj in vars(providers).items()
        if inspect.isclass(obj) and obj.__module__ == providers.__name__ and name.endswith("CodeProvider")
    }
    assert provider_classes, "no code providers found"
    assert provider_classes <= names
    assert set(errors.__all__) <= names


@pytest.mark.parametrize("package", PACKAGES)
def test_each_package_exports_the_shared_names_as_the_same_objects(package: str) -> None:
    module: ModuleType = importlib.import_module(package)
    missing = [name for name in public_api.__all__ if name not in module.__all__]
    assert not missing, f"{package}.__all__ lacks {missing}"
    for name in public_api.__all__:
        assert getattr(module, name) is getattr(public_api, name), name
    assert len(module.__all__) == len(set(module.__all__)), "a name is listed twice"
    namespace: dict[str, object] = {}
    exec(f"from {package} import *", namespace)  # every listed name exists
    assert set(module.__all__) <= set(namespace)


def test_the_names_of_the_issue_import_from_the_sdk_packages() -> None:
    from metalcloud_async import PreconditionFailedError, TwoFactorCodeRejectedError
    from quatrix_async import APIError, CallbackCodeProvider, CaptchaRequiredError, MfaCodeRejectedError

    assert issubclass(MfaCodeRejectedError, APIError)
    assert issubclass(CaptchaRequiredError, errors.MfaError)
    assert issubclass(TwoFactorCodeRejectedError, MfaCodeRejectedError)
    assert PreconditionFailedError is errors.PreconditionFailedError
    assert CallbackCodeProvider is mfa_common.CallbackCodeProvider


# --------------------------------------------------------------------------- QR helpers

URI = "otpauth://totp/Acme:alice%40example.com?secret=JBSWY3DPEHPK3PXP&issuer=Acme"
_HALVES = {" ": (False, False), "▀": (True, False), "▄": (False, True), "█": (True, True)}


def _decode(text: str) -> list[list[bool]]:
    """Rows of light modules from the half-block drawing (two rows per line)."""
    rows: list[list[bool]] = []
    for line in text.splitlines():
        pairs = [_HALVES[ch] for ch in line]
        rows.append([top for top, _ in pairs])
        rows.append([bottom for _, bottom in pairs])
    return rows


def test_render_qr_draws_the_qr_code_of_the_uri_module_by_module() -> None:
    drawn = _decode(render_qr(URI, border=0))
    matrix = [[not dark for dark in row] for row in segno.make(URI, error="m").matrix_iter(border=0)]
    assert drawn[: len(matrix)] == matrix


def test_render_qr_takes_a_secret_and_print_qr_writes_the_same_text() -> None:
    out = io.StringIO()
    print_qr(mfa_common.Secret(URI), file=out)
    assert out.getvalue() == render_qr(URI)
    assert mfa_common.print_qr is print_qr and mfa_common.render_qr is render_qr


def test_without_segno_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "segno", None)
    with pytest.raises(ImportError, match=r"pip install 'mfa-sdks\[cli\]'"):
        render_qr(URI)
    with pytest.raises(ImportError, match="segno"):
        print_qr(URI, file=io.StringIO())
