"""Signed-in people for the browser tests: a user made through the ORM and a `before_load` hook
(tests/browser/conftest.py `open_room`) that signs a browser context in through the real
sign-in form, as a person would."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

PASSWORD = "pw-browser-123456789"


def new_user(live: Any, prefix: str) -> str:
    """A fresh user named `prefix` and 6 hex digits, with `PASSWORD`; its username."""
    name = f"{prefix}{secrets.token_hex(3)}"
    live.create_user(name, PASSWORD)
    return name


def fill_sign_in(live: Any, page: Any, username: str, password: str = PASSWORD) -> None:
    """Signs `page`'s context in through the sign-in form and waits to be sent on."""
    page.goto(f"{live.django_url}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.locator("form button[type=submit], form input[type=submit]").first.click()
    page.wait_for_url(lambda url: "/accounts/login/" not in url)


def signed_in(
    live: Any, username: str, before: Callable[[Any, Any], None] | None = None
) -> Callable[[Any, Any], None]:
    """A `before_load` hook: `before(context, page)` first when given (permissions, init
    scripts), then the sign-in form."""

    def hook(context: Any, page: Any) -> None:
        if before is not None:
            before(context, page)
        fill_sign_in(live, page, username)

    return hook
