"""Per-client rate limits (tickets, search, sign-in, guest identities, password reset requests),
counted by django-ratelimit.

The counters live in Django's cache (``CACHES["default"]``): per process with the default
LocMemCache, shared by every process with ``DJANGO_REDIS_URL``. The rates are settings
(``RATELIMIT_TICKET``, ``RATELIMIT_SEARCH``, ``RATELIMIT_LOGIN_IP``, ``RATELIMIT_LOGIN_USER``,
``RATELIMIT_GUEST_IDENTITY``, ``RATELIMIT_ROOM_CREATE``, ``RATELIMIT_INVITE``, ``RATELIMIT_UPLOAD``,
``RATELIMIT_RESET_IP``, ``RATELIMIT_RESET_EMAIL``) read at call time.

Sign-in (every sign-in form: ``/accounts/login/`` and ``/admin/login/``, through
:func:`sign_in_limited`) counts *failed* attempts per (username, client address) and per client
address (a ceiling over every username). Nothing is counted per username alone: such a counter
would let anyone lock an account out from their own address (docs/security.md, "Rate limits").
"""

from __future__ import annotations

import functools
import ipaddress
import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.decorators import method_decorator
from django_ratelimit.core import get_usage

log = logging.getLogger(__name__)


def client_ip(request: HttpRequest) -> str:
    """The client's address: ``REMOTE_ADDR``, or behind our proxy the last X-Forwarded-For entry.

    Only the last entry is trusted: the proxy appends the address it saw, while anything before
    it was sent by the client and can be forged.
    """
    candidates = [request.META.get("REMOTE_ADDR", "")]
    if settings.RATELIMIT_TRUST_X_FORWARDED_FOR:
        candidates.insert(0, request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")[-1].strip())
    for candidate in candidates:
        try:
            return str(ipaddress.ip_address(candidate))
        except ValueError:
            continue
    # No usable address (a Unix-socket proxy without X-Forwarded-For): one shared bucket, which
    # errs on the side of limiting.
    return "0.0.0.0"  # noqa: S104 - a bucket name, nothing binds to it


def _session_or_ip(group: str, request: HttpRequest) -> str:
    # A signed-in user is one client whatever its address; a guest is its session when the browser
    # already has one, otherwise its address (a cookie-less client cannot spread its requests over
    # fresh sessions without each first request counting against its address).
    if request.user.is_authenticated:
        return f"user:{request.user.pk}"
    session_key = request.session.session_key
    if session_key and request.COOKIES.get(settings.SESSION_COOKIE_NAME) == session_key:
        return f"session:{session_key}"
    return f"ip:{client_ip(request)}"


def _username(request: HttpRequest) -> str:
    # Case-folded: the default backend's usernames are case-sensitive, but an attacker should not
    # get a fresh allowance by changing case.
    return request.POST.get("username", "").strip().casefold()


def _username_and_ip(group: str, request: HttpRequest) -> str:
    return f"user:{_username(request)}|ip:{client_ip(request)}"


def _over(request: HttpRequest, group: str, key: Any, rate: str) -> int | None:
    """Count this request; return seconds until the window resets when it is over the limit."""
    usage = get_usage(request, group=group, key=key, rate=rate, increment=True)
    if usage is None or not usage["should_limit"]:
        return None
    return max(int(usage["time_left"]), 1)


def ticket_limited(request: HttpRequest) -> int | None:
    """Count a ticket request; ``Retry-After`` seconds when this client is over the limit."""
    retry_after = _over(request, "chat.ticket", _session_or_ip, settings.RATELIMIT_TICKET)
    if retry_after is not None:
        log.warning("ticket rate limit reached for %s", request.path)
    return retry_after


def search_limited(request: HttpRequest) -> int | None:
    """Count a search (``/api/search/`` and the search page); seconds to wait when over the limit.

    Counted like tickets: per signed-in user, per guest session, else per address.
    """
    retry_after = _over(request, "chat.search", _session_or_ip, settings.RATELIMIT_SEARCH)
    if retry_after is not None:
        log.warning("search rate limit reached")
    return retry_after


def room_create_limited(request: HttpRequest) -> int | None:
    """Count a room creation (``RATELIMIT_ROOM_CREATE``, per signed-in user); seconds to wait
    when over the limit."""
    retry_after = _over(request, "chat.room_create", _session_or_ip, settings.RATELIMIT_ROOM_CREATE)
    if retry_after is not None:
        log.warning("room creation rate limit reached")
    return retry_after


def invite_limited(request: HttpRequest) -> int | None:
    """Count an invitation (by username or a link; ``RATELIMIT_INVITE``, per signed-in user);
    seconds to wait when over the limit."""
    retry_after = _over(request, "chat.invite", _session_or_ip, settings.RATELIMIT_INVITE)
    if retry_after is not None:
        log.warning("invitation rate limit reached")
    return retry_after


def upload_limited(request: HttpRequest) -> int | None:
    """Count an attachment upload (``RATELIMIT_UPLOAD``, per signed-in user); seconds to wait
    when over the limit. Counted before the body is read."""
    retry_after = _over(request, "chat.upload", _session_or_ip, settings.RATELIMIT_UPLOAD)
    if retry_after is not None:
        log.warning("upload rate limit reached")
    return retry_after


def guest_identity_limited(request: HttpRequest) -> int | None:
    """Count the creation of a new guest identity per client address; seconds to wait when over.

    Only creations count (a visit without a session cookie), so a guest that keeps its cookie
    is never limited by this, while a cookie-less client cannot mint identities without end.
    """
    retry_after = _over(request, "chat.guest_identity", "ip", settings.RATELIMIT_GUEST_IDENTITY)
    if retry_after is not None:
        log.warning("guest identity rate limit reached")
    return retry_after


def _reset_email(group: str, request: HttpRequest) -> str:
    # The address as Django's reset form matches it (case-insensitively), so changing case buys
    # no fresh allowance.
    return "email:" + request.POST.get("email", "").strip().casefold()


def password_reset_limited(request: HttpRequest) -> int | None:
    """Count a password reset request (a POST of the reset form) per client address and per
    e-mail address asked for; seconds to wait when either is over its limit.

    Every request counts, whether or not an account has that address, so the answer never tells
    which addresses have accounts; the per-address limit stops anyone from filling a person's
    mailbox with reset mails, the per-client one from walking through many addresses.
    """
    waits = [
        _over(request, "chat.reset.ip", "ip", settings.RATELIMIT_RESET_IP),
        _over(request, "chat.reset.email", _reset_email, settings.RATELIMIT_RESET_EMAIL),
    ]
    waits = [wait for wait in waits if wait is not None]
    if not waits:
        return None
    log.warning("password reset rate limit reached")
    return max(waits)


def _login_counters() -> list[tuple[str, Any, str]]:
    """(group, key, rate) of the sign-in failure counters, read at call time."""
    return [
        ("chat.login.ip", "ip", settings.RATELIMIT_LOGIN_IP),
        ("chat.login.user_ip", _username_and_ip, settings.RATELIMIT_LOGIN_USER),
    ]


def login_limited(request: HttpRequest) -> int | None:
    """Seconds to wait when this sign-in POST's address, or its (username, address) pair, has
    used up its failed attempts in the current window; None to let the password be checked.

    Reads the counters without counting: only failures count (:func:`count_failed_login`).
    """
    waits = []
    for group, key, rate in _login_counters():
        usage = get_usage(request, group=group, key=key, rate=rate, increment=False)
        if usage is not None and usage["count"] >= usage["limit"]:
            waits.append(max(int(usage["time_left"]), 1))
    if not waits:
        return None
    log.warning("sign-in rate limit reached")
    return max(waits)


def count_failed_login(request: HttpRequest) -> None:
    """Count one failed sign-in against its address and its (username, address) pair."""
    for group, key, rate in _login_counters():
        get_usage(request, group=group, key=key, rate=rate, increment=True)


def _refusal(request: HttpRequest, retry_after: int) -> HttpResponse:
    response = render(
        request, "chat/registration/rate_limited.html", {"retry_after": retry_after}, status=429
    )
    response["Retry-After"] = str(retry_after)
    return response


def sign_in_limited(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Wrap a sign-in view (Django's ``LoginView``, the admin's ``login``): a POST over a limit
    answers 429 before the password is checked; a POST that does not sign in (anything but the
    success redirect) counts as a failure. GETs are never limited."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method != "POST":
            return view(request, *args, **kwargs)
        retry_after = login_limited(request)
        if retry_after is not None:
            return _refusal(request, retry_after)
        response = view(request, *args, **kwargs)
        if response.status_code != 302:
            count_failed_login(request)
        return response

    return wrapper


class RateLimitedLoginView(auth_views.LoginView):
    """Django's sign-in view, answering 429 with a page once a client tries too often."""

    template_name = "chat/registration/login.html"

    @method_decorator(sign_in_limited)
    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        """Refuse before the password is checked when the client is over a sign-in limit."""
        return super().post(request, *args, **kwargs)
