"""DjangoClient against treq's StubTreq: signed requests, parsed answers, errors."""

import orjson
import pytest
from treq.testing import StubTreq
from twisted.internet.task import Clock
from twisted.web.resource import Resource

from chatserver.djangoclient import DjangoClient, DjangoError, UnknownRoom
from chatserver.signing import verify_request


class FakeInternalApi(Resource):
    """Records requests and answers like Django's internal API."""

    isLeaf = True

    def __init__(self):
        super().__init__()
        self.seen = []
        self.status = 200
        self.answer = {}

    def render(self, request):
        body = request.content.read()
        self.seen.append(
            (
                request.method.decode(),
                request.uri.decode(),
                body,
                request.getHeader(b"x-chat-timestamp"),
                request.getHeader(b"x-chat-signature"),
            )
        )
        request.setResponseCode(self.status)
        return orjson.dumps(self.answer) if isinstance(self.answer, dict) else self.answer


@pytest.fixture
def api():
    resource = FakeInternalApi()
    clock = Clock()
    clock.advance(1_795_000_000)
    client = DjangoClient("http://django.test", "s", StubTreq(resource), clock, timeout=1)
    return resource, client


def _check_signed(seen):
    method, uri, body, ts, sig = seen
    verify_request(
        ["s"],
        timestamp=ts.decode(),
        sig=sig.decode(),
        method=method,
        path_and_query=uri,
        body=body,
        now=1_795_000_000,
    )


def test_persist_batch_is_signed_and_returns_results(api):
    """The batch POST carries valid signature headers over its exact body; results come back."""
    resource, client = api
    resource.answer = {"results": [{"ok": True, "created": True, "message": {"id": 1}}]}
    d = client.persist_batch([{"room": "r", "nonce": "n"}])
    assert d.result == resource.answer["results"]
    method, uri, body, _, _ = resource.seen[0]
    assert (method, uri) == ("POST", "/internal/messages/batch/")
    assert orjson.loads(body) == {"messages": [{"room": "r", "nonce": "n"}]}
    _check_signed(resource.seen[0])


def test_messages_after_signs_path_with_query(api):
    """History reads sign the path including its query string and parse the page."""
    resource, client = api
    resource.answer = {"messages": [{"id": 3}], "has_more": True}
    d = client.messages_after("lobby", 2, 100)
    assert d.result == ([{"id": 3}], True)
    assert resource.seen[0][1] == "/internal/rooms/lobby/messages/?after=2&limit=100"
    _check_signed(resource.seen[0])
    assert client.latest_messages("lobby", 50).result == ([{"id": 3}], True)
    assert resource.seen[1][1] == "/internal/rooms/lobby/messages/?limit=50"


def test_errors(api):
    """404 is UnknownRoom, other statuses and wrong shapes are DjangoError."""
    resource, client = api
    resource.status = 404
    client.latest_messages("gone", 5).addErrback(lambda f: f.trap(UnknownRoom) and None)
    resource.status = 500
    failure = []
    client.persist_batch([{}]).addErrback(failure.append)
    assert failure and failure[0].check(DjangoError)
    resource.status = 200
    resource.answer = {"results": []}
    failure = []
    client.persist_batch([{}]).addErrback(failure.append)
    assert failure and failure[0].check(DjangoError)


def test_health(api):
    """health() is True only for {"status": "ok"}."""
    resource, client = api
    resource.answer = {"status": "ok"}
    assert client.health().result is True
    resource.status = 503
    assert client.health().result is False


def test_room_detail_is_signed_and_parsed(api):
    """The room read (used after a Redis outage to spot a missed archive) is a signed GET."""
    resource, client = api
    resource.answer = {"slug": "lobby", "is_archived": True, "last_id": 9}
    assert client.room_detail("lobby").result == resource.answer
    assert resource.seen[0][:2] == ("GET", "/internal/rooms/lobby/")
    _check_signed(resource.seen[0])


def test_an_answered_failure_is_refused_and_no_answer_is_unreachable(api):
    """A 5xx (or 413) answer is `DjangoRefused` with its status; a connection failure is
    `DjangoUnreachable`: persistence bisects on the first and waits out the second."""
    from twisted.internet.defer import fail
    from twisted.internet.error import ConnectionRefusedError

    from chatserver.djangoclient import DjangoRefused, DjangoUnreachable

    resource, client = api
    for status in (500, 503, 413):
        resource.status = status
        failure = []
        client.persist_batch([{"room": "r"}]).addErrback(failure.append)
        assert failure[0].check(DjangoRefused) and failure[0].value.status == status
        assert not failure[0].check(DjangoUnreachable)

    class Refusing:
        def request(self, *args, **kwargs):
            return fail(ConnectionRefusedError())

    down = DjangoClient("http://django.test", "s", Refusing(), Clock(), timeout=1)
    failure = []
    down.persist_batch([{"room": "r"}]).addErrback(failure.append)
    assert failure[0].check(DjangoUnreachable) and failure[0].value.status is None
    assert not failure[0].check(DjangoRefused)


def test_an_item_that_cannot_be_encoded_is_refused_without_a_request(api):
    """A lone surrogate cannot be sent as UTF-8 JSON: `DjangoRefused`, nothing sent."""
    from chatserver.djangoclient import DjangoRefused

    resource, client = api
    failure = []
    client.persist_batch([{"room": "r", "name": "\ud800"}]).addErrback(failure.append)
    assert failure[0].check(DjangoRefused)
    assert resource.seen == []


def test_the_batch_url_is_prepared_once_and_means_the_same_uri():
    """The batch POST's URL is converted to its URI form once (not by treq on every request):
    the same target, a path prefix and an internationalised host kept as `to_uri` makes them."""
    from hyperlink import EncodedURL

    from chatserver.djangoclient import BATCH_PATH, _PreparedURL

    urls = []

    class Recording:
        def request(self, method, url, **kwargs):
            urls.append(url)
            text = url if isinstance(url, str) else url.to_text()
            return StubTreq(FakeInternalApi()).request(method, text, **kwargs)

    base = "http://bücher.test:8000/prefix"
    client = DjangoClient(base, "s", Recording(), Clock(), timeout=1)
    client.persist_batch([]).addErrback(lambda failure: None)  # {} holds no results
    client.messages_after("lobby", 3).addErrback(lambda failure: None)  # {} is no page
    prepared, other = urls
    assert isinstance(prepared, _PreparedURL) and prepared.to_uri() is prepared
    expected = EncodedURL.from_text(base + BATCH_PATH).to_uri().to_text()
    assert prepared.to_text() == expected == "http://xn--bcher-kva.test:8000/prefix" + BATCH_PATH
    assert isinstance(other, str)  # the other calls are rare: treq converts them as before
