"""docs/security.md cites the test that pins each hostile input: every citation must exist."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CITATION = re.compile(r"`(tests/[\w/]+\.py)?(?:::(\w+))?`")


def cited_tests(text: str) -> list[tuple[str, str]]:
    """(file, test) pairs from the table rows; `::name` alone refers to the last file named."""
    pairs = []
    for line in text.splitlines():
        if not line.startswith("|"):
            continue
        current = None
        for path, name in CITATION.findall(line):
            current = path or current
            if name and current:
                pairs.append((current, name))
    return pairs


def test_every_test_cited_in_security_md_exists():
    """A renamed or deleted test shows up here instead of leaving a dangling citation."""
    pairs = cited_tests((ROOT / "docs/security.md").read_text())
    assert len(pairs) > 50
    missing = [
        (path, name)
        for path, name in pairs
        if not re.search(rf"def {name}\b", (ROOT / path).read_text())
    ]
    assert missing == []
