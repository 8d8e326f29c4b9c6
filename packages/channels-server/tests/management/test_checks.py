"""The system check that catches ``channels_server`` listed after staticfiles."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.core.checks import Error, run_checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

# The test settings' applications (other apps' checks need them), in three orders.
_OTHERS = [name for name in settings.INSTALLED_APPS if name != "channels_server"]
if "django.contrib.staticfiles" not in _OTHERS:
    _OTHERS.append("django.contrib.staticfiles")
BEFORE = ["channels_server", *_OTHERS]
AFTER = [*_OTHERS, "channels_server"]
WITHOUT_STATICFILES = [name for name in BEFORE if name != "django.contrib.staticfiles"]


def ours(errors: list[object]) -> list[Error]:
    return [
        error
        for error in errors
        if isinstance(error, Error)
        and error.id is not None
        and error.id.startswith("channels_server")
    ]


def test_channels_server_after_staticfiles_is_an_error() -> None:
    with override_settings(INSTALLED_APPS=AFTER):
        (error,) = ours(run_checks())
    assert error.id == "channels_server.E001"
    assert "django.contrib.staticfiles" in error.msg
    assert error.hint == (
        "Move 'channels_server' above 'django.contrib.staticfiles' in INSTALLED_APPS."
    )


def test_manage_py_check_fails_on_it() -> None:
    with override_settings(INSTALLED_APPS=AFTER), pytest.raises(SystemCheckError) as raised:
        call_command("check")
    assert "channels_server.E001" in str(raised.value)


@pytest.mark.parametrize(
    "installed",
    [
        BEFORE,
        # Without staticfiles there is no runserver to lose to; without
        # channels_server the check has nothing to say (it stays registered).
        WITHOUT_STATICFILES,
        _OTHERS,
    ],
)
def test_other_orders_pass(installed: list[str]) -> None:
    with override_settings(INSTALLED_APPS=installed):
        assert ours(run_checks()) == []
