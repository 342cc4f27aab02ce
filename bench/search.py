"""`python -m bench.search` (`make bench-search`): full-text search over 1,000,000 stored messages,
on SQLite (FTS5) and on PostgreSQL (GIN index), through the real ``GET /api/search/`` view.

For each back end a child process migrates a fresh database (a file in a temporary directory;
a throw-away database on the PostgreSQL server of ``BENCH_POSTGRES_URL``, dropped afterwards),
stores the messages with ``bulk_create`` (the index is dropped meanwhile and rebuilt once at the
end, as an operator would for a bulk load), then times searches as a guest across every room it
may read: 20 results, newest first, with snippets. Queries are words drawn from the same
Zipf-like distribution as the message text, so common and rare words are both searched as often
as users would type them. Prints one JSON document and writes it to
``bench/results/search.json``.

    python -m bench.search                            # both back ends, 1,000,000 messages
    python -m bench.search --messages 20000 --queries 50 --backends sqlite   # a quick look
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
POSTGRES_URL = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/chat")
VOCABULARY = 20_000
ROOMS = 20  # 4 of them sign-in only: the guest's searches skip them
BATCH = 5_000


def vocabulary(seed: int = 7) -> tuple[list[str], list[float]]:
    """Pronounceable made-up words with Zipf weights (rank r has weight 1/r)."""
    rng = random.Random(seed)
    syllables = [c + v for c in "bcdfghjklmnprstvwz" for v in "aeiou"]
    words: list[str] = []
    seen: set[str] = set()
    while len(words) < VOCABULARY:
        word = "".join(rng.choice(syllables) for _ in range(rng.randint(2, 4)))
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words, [1.0 / rank for rank in range(1, VOCABULARY + 1)]


def percentile(samples: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``samples``, by the nearest-rank method."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def child(database_url: str, messages: int, queries: int) -> dict[str, Any]:
    """Fill ``database_url`` and time the searches; runs in its own process (own settings)."""
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django_twisted_chat.settings")
    os.environ["DJANGO_RATELIMIT_ENABLE"] = "0"
    os.environ.setdefault("DJANGO_SECRET_KEY", secrets.token_urlsafe(32))
    os.environ.setdefault("CHAT_SHARED_SECRET", secrets.token_urlsafe(32))
    import django

    django.setup()
    from django.test.utils import setup_test_environment

    setup_test_environment()  # the test client's host and in-memory e-mail; DEBUG stays off
    from django.core.management import call_command
    from django.db import connection, transaction
    from django.test import Client
    from django.utils import timezone

    from chat import search_index
    from chat.models import Message, Room

    call_command("migrate", verbosity=0)
    words, weights = vocabulary()
    cumulative = list(itertools.accumulate(weights))
    rng = random.Random(11)
    rooms = [
        Room.objects.create(slug=f"bench-{n}", name=f"Bench {n}", allow_guests=n >= 4)
        for n in range(ROOMS)
    ]
    started = time.perf_counter()
    search_index.uninstall(connection)
    # Raw rows in the model's own column order, defaults from the model: COPY on PostgreSQL,
    # executemany on SQLite (bulk_create needed ~7 minutes for 10^6 rows on PostgreSQL).
    fields = [f for f in Message._meta.concrete_fields if not f.primary_key]
    columns = [f.column for f in fields]
    defaults = {f.attname: f.get_default() for f in fields}
    now = timezone.now()
    base = {**defaults, "author_name": "bench", "author_uid": "g:" + "0" * 16}
    base.update(author_is_guest=True, sent_at=now)

    def rows(start: int, count: int):
        for n in range(start, start + count):
            values = dict(base)
            values["room_id"] = rooms[n % ROOMS].pk
            values["body"] = " ".join(
                rng.choices(words, cum_weights=cumulative, k=rng.randint(4, 20))
            )
            values["nonce"] = f"b{n}"
            values["is_deleted"] = n % 50 == 0  # 2 % removed by moderators
            yield [values[f.attname] for f in fields]

    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            names = ", ".join(connection.ops.quote_name(c) for c in columns)
            raw = cursor.cursor  # psycopg's own cursor: COPY
            with raw.copy(f"COPY chat_message ({names}) FROM STDIN") as copy:
                for row in rows(0, messages):
                    copy.write_row(row)
        else:
            names = ", ".join(connection.ops.quote_name(c) for c in columns)
            marks = ", ".join("%s" for _ in columns)
            sql = f"INSERT INTO chat_message ({names}) VALUES ({marks})"  # noqa: S608 - our names
            for start in range(0, messages, BATCH):
                cursor.executemany(sql, list(rows(start, min(BATCH, messages - start))))
    loaded = time.perf_counter()
    search_index.install(connection)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE chat_message")
    indexed = time.perf_counter()

    client = Client()  # a signed-out visitor: reads the guest rooms only
    figures: dict[str, Any] = {
        "vendor": connection.vendor,
        "messages": messages,
        "load_s": round(loaded - started, 1),
        "index_s": round(indexed - loaded, 1),
    }
    for label, terms in (("one_word", 1), ("two_words", 2)):
        timings: list[float] = []
        hits: list[int] = []
        for _ in range(5):  # warm-up: caches and the connection, not counted
            client.get(
                "/api/search/", {"q": " ".join(rng.choices(words, cum_weights=cumulative, k=terms))}
            )
        for _ in range(queries):
            q = " ".join(rng.choices(words, cum_weights=cumulative, k=terms))
            t0 = time.perf_counter()
            response = client.get("/api/search/", {"q": q})
            timings.append((time.perf_counter() - t0) * 1000)
            assert response.status_code == 200, response.content[:200]
            hits.append(len(response.json()["results"]))
        figures[label] = {
            "queries": queries,
            "p50_ms": round(percentile(timings, 0.50), 1),
            "p95_ms": round(percentile(timings, 0.95), 1),
            "max_ms": round(max(timings), 1),
            "mean_results": round(statistics.mean(hits), 1),
        }
    return figures


def run_backend(backend: str, messages: int, queries: int, workdir: Path) -> dict[str, Any]:
    """One child process per back end, on a fresh database."""
    dropped = None
    if backend == "sqlite":
        database_url = f"sqlite:///{workdir / 'search-bench.sqlite3'}"
    else:
        import psycopg

        server = urlsplit(POSTGRES_URL)
        name = f"chat_bench_search_{secrets.token_hex(4)}"
        admin_url = urlunsplit(server._replace(path="/postgres"))
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        database_url = urlunsplit(server._replace(path=f"/{name}"))

        def dropped() -> None:
            with psycopg.connect(admin_url, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    try:
        result = subprocess.run(
            [sys.executable, "-m", "bench.search", "--child", database_url]
            + ["--messages", str(messages), "--queries", str(queries)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            return {"vendor": backend, "error": result.stderr[-2000:]}
        return json.loads(result.stdout)
    finally:
        if dropped:
            dropped()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.messages, args.queries)))
        return 0
    report: dict[str, Any] = {"messages": args.messages, "backends": {}}
    with tempfile.TemporaryDirectory(prefix="bench-search-") as workdir:
        for backend in args.backends.split(","):
            report["backends"][backend] = run_backend(
                backend, args.messages, args.queries, Path(workdir)
            )
    pg = report["backends"].get("postgresql", {})
    if "one_word" in pg:
        worst = max(pg["one_word"]["p95_ms"], pg["two_words"]["p95_ms"])
        report["target"] = {"postgresql_p95_ms_at_most": 100, "worst_p95_ms": worst}
        report["target"]["met"] = worst <= 100
    text = json.dumps(report, indent=2)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "search.json").write_text(text + "\n")
    sys.stdout.write(text + "\n")
    return 0 if all("error" not in b for b in report["backends"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
