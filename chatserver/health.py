"""`GET /healthz` (asks Django's internal health endpoint) and `GET /metrics` (Prometheus)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from chatserver.web import json_response


class HealthResource(Resource):
    """200 when Django's internal API answers, 503 otherwise; JSON body either way."""

    isLeaf = True

    def __init__(self, django: Any, stats: Any) -> None:
        super().__init__()
        self._django = django
        self._stats = stats

    def render_GET(self, request: Any) -> Any:  # noqa: N802 (twisted API)
        finished = []
        request.notifyFinish().addBoth(finished.append)

        def answer(ok: bool) -> None:
            if finished:
                return  # the caller went away
            payload = {"status": "ok" if ok else "degraded", "django": "ok" if ok else "down"}
            payload.update(self._stats())
            request.write(json_response(request, 200 if ok else 503, payload))
            request.finish()

        self._django.health().addCallback(answer)
        return NOT_DONE_YET


class MetricsResource(Resource):
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
