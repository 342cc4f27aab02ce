"""Liveness on the public port; detailed health and Prometheus metrics on the internal listener.

docs/protocol.md, "Health and metrics":

- public port, `GET /healthz` (`LivenessResource`): 200 `{"status": "ok"}` from the process alone,
  never a call to Django, so anyone may ask it as often as they like;
- internal listener (`CHAT_INTERNAL_INTERFACE:CHAT_INTERNAL_PORT`, 127.0.0.1 by default),
  `GET /healthz` (`HealthResource`): Django's health through `DjangoHealthCheck`, which asks
  Django at most once per `CHAT_HEALTH_CACHE` seconds on the injected clock, and `GET /metrics`
  (`MetricsResource`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from twisted.internet.defer import Deferred, succeed
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from chatserver.methods import MethodsResource
from chatserver.web import error_response, json_response


class DjangoHealthCheck:
    """Django's health answer, cached for `ttl` seconds on `clock`; one call in flight at most.

    `health()` fires with True or False like `DjangoClient.health()`, but concurrent callers share
    one request and a result is reused until `ttl` has passed since the request began.
    """

    def __init__(self, django: Any, clock: Any, ttl: float) -> None:
        self._django = django
        self._clock = clock
        self._ttl = ttl
        self._checked_at = float("-inf")
        self._result: bool | None = None
        self._waiting: list[Deferred] | None = None

    def health(self) -> Deferred:
        """A Deferred firing with Django's (possibly cached) health, a bool."""
        now = self._clock.seconds()
        if self._result is not None and now - self._checked_at < self._ttl:
            return succeed(self._result)
        waiter: Deferred = Deferred()
        if self._waiting is not None:
            self._waiting.append(waiter)
            return waiter
        self._waiting = [waiter]
        started = now
        d = self._django.health()
        d.addErrback(lambda _failure: False)
        d.addCallback(self._answered, started)
        return waiter

    def _answered(self, ok: Any, started: float) -> None:
        self._result = bool(ok)
        self._checked_at = started
        waiting, self._waiting = self._waiting or [], None
        for waiter in waiting:
            waiter.callback(self._result)


class LivenessResource(MethodsResource):
    """Public `/healthz`: 200 `{"status": "ok"}` while the process serves; no call to Django."""

    isLeaf = True

    def render_GET(self, request: Any) -> bytes:  # noqa: N802 (twisted API)
        return json_response(request, 200, {"status": "ok"})


class HealthResource(MethodsResource):
    """Internal `/healthz`: 200 when Django's internal API answers, 503 otherwise; JSON body
    either way, with the numbers `stats()` adds. `check.health()` is a `DjangoHealthCheck` (or
    anything with the same method)."""

    isLeaf = True

    def __init__(self, check: Any, stats: Callable[[], dict]) -> None:
        super().__init__()
        self._check = check
        self._stats = stats

    def render_GET(self, request: Any) -> Any:  # noqa: N802 (twisted API)
        finished: list = []
        request.notifyFinish().addBoth(finished.append)

        def answer(ok: bool) -> None:
            if finished:
                return  # the caller went away
            payload = {"status": "ok" if ok else "degraded", "django": "ok" if ok else "down"}
            payload.update(self._stats())
            request.write(json_response(request, 200 if ok else 503, payload))
            request.finish()

        self._check.health().addCallback(answer)
        return NOT_DONE_YET


class MetricsResource(MethodsResource):
    """Prometheus text exposition of one registry, rendered synchronously (it is cheap).

    prometheus_client.twisted.MetricsResource imports the global reactor at import time and
    renders in a thread pool; neither is wanted here.
    """

    isLeaf = True

    def __init__(self, registry: CollectorRegistry) -> None:
        super().__init__()
        self._registry = registry

    def render_GET(self, request: Any) -> bytes:  # noqa: N802 (twisted API)
        request.setHeader(b"Content-Type", CONTENT_TYPE_LATEST.encode("ascii"))
        return generate_latest(self._registry)


class InternalRoot(Resource):
    """The internal listener's tree: `/healthz` and `/metrics` (one trailing slash ignored, like
    the public port); any other path answers 404."""

    def __init__(self, health: Resource, metrics: Resource) -> None:
        super().__init__()
        self.putChild(b"healthz", health)
        self.putChild(b"metrics", metrics)

    def getChildWithDefault(self, path: bytes, request: Any) -> Resource:  # noqa: N802 (twisted API)
        if path and request.postpath and request.postpath[-1] == b"":
            request.postpath.pop()
        return super().getChildWithDefault(path, request)

    def getChild(self, path: bytes, request: Any) -> Resource:  # noqa: N802 (twisted API)
        return _InternalNotFound()

    def render(self, request: Any) -> bytes:
        return error_response(request, 404, "not_found", "No such resource.")


class _InternalNotFound(Resource):
    isLeaf = True

    def render(self, request: Any) -> bytes:
        return error_response(request, 404, "not_found", "No such resource.")
