"""``manage.py purgeuploads``: delete uploads never sent within ``CHAT_UNSENT_UPLOAD_TTL``.

Every upload already purges a bounded slice of them (chat/attachment_views.py); this command
empties the whole backlog, for a cron job on a quiet site.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from chat.attachments import purge_unsent


class Command(BaseCommand):
    """Delete stale unsent uploads (rows now, their files after commit)."""

    help = "Delete attachments uploaded more than CHAT_UNSENT_UPLOAD_TTL seconds ago, never sent."

    def handle(self, *args: Any, **options: Any) -> None:
        """Purge slice after slice until none is left; print how many went."""
        total = 0
        while True:
            count = purge_unsent()
            total += count
            if count == 0:
                break
        self.stdout.write(f"Deleted {total} unsent upload(s).")
