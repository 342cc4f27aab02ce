"""JSON error bodies for every error under the app's ``api/`` and ``internal/`` URL groups
(docs/protocol.md, "Public JSON API": errors).

Django answers an unmatched URL, a wrong method (``require_GET``), a CSRF failure or a server
error with an HTML page (or an empty body), whatever the path. Under the JSON prefixes this
middleware, the innermost one, replaces any such answer by the contract's error body
``{"error", "message"}`` with the same status; JSON answers of the views pass untouched, and the
``Allow`` and ``Retry-After`` headers are kept.

The prefixes are wherever the project mounted the two groups (``/api/`` and ``/internal/`` in this
project, ``/chats/api/`` and ``/chats/internal/`` under ``path("chats/", include("chat.urls"))``),
found by reversing one URL of each, so the middleware only touches the chat app's own paths. It is
optional for a host project: without it the app's views still answer their own errors in JSON, but
Django's 404/405/CSRF/500 pages under those prefixes stay HTML.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import NoReverseMatch, reverse

# One URL of each JSON group and its path inside the group: the prefix is what comes before it.
GROUP_PROBES = (("chat:api_rooms", "rooms/"), ("chat:internal_health", "health/"))

ERROR_CODES = {
    400: ("bad_request", "The request is malformed."),
    401: ("unauthorized", "Sign in first."),
    403: ("forbidden", "Not allowed."),
    404: ("not_found", "No such resource."),
    405: ("method_not_allowed", "This method is not allowed here."),
    413: ("payload_too_large", "The body is over the limit."),
    429: ("rate_limited", "Too many requests; wait and retry."),
    500: ("server_error", "The server failed; try again later."),
    503: ("unavailable", "The service is unavailable; try again later."),
}
KEPT_HEADERS = ("Allow", "Retry-After")


def json_prefixes() -> tuple[str, ...]:
    """The paths under which the app's JSON groups are mounted (script prefix included)."""
    prefixes = []
    for name, tail in GROUP_PROBES:
        try:
            url = reverse(name)
        except NoReverseMatch:  # the project did not mount this group
            continue
        prefixes.append(url.removesuffix(tail))
    return tuple(prefixes)


def _is_json(response: HttpResponse) -> bool:
    return response.get("Content-Type", "").startswith("application/json")


class JsonErrorsMiddleware:
    """Turn a non-JSON error answer (status 400-599) under a JSON prefix into the error body."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            response.status_code < 400
            or _is_json(response)
            or not request.path.startswith(json_prefixes())
        ):
            return response
        code, message = ERROR_CODES.get(
            response.status_code, ("error", "The request could not be served.")
        )
        if response.status_code == 405 and response.has_header("Allow"):
            message = f"Allowed: {response['Allow']}."
        replaced = JsonResponse({"error": code, "message": message}, status=response.status_code)
        for header in KEPT_HEADERS:
            if response.has_header(header):
                replaced[header] = response[header]
        replaced["Cache-Control"] = "no-store"
        return replaced
