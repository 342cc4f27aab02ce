"""The room list's "last message" label (chat/templatetags/chat_time.py): "just now" within the
last minute, never "0 minutes ago"."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from chat.models import Message
from chat.templatetags.chat_time import ago


def test_ago_says_just_now_within_the_last_minute_and_timesince_after():
    now = timezone.now()
    assert ago(now, now) == "just now"
    assert ago(now - timedelta(seconds=59), now) == "just now"
    # A little in the future (the clock of another worker): still just now, not "0 minutes".
    assert ago(now + timedelta(seconds=5), now) == "just now"
    # timesince joins number and unit with a no-break space.
    assert ago(now - timedelta(minutes=1), now) == "1\xa0minute ago"
    assert ago(now - timedelta(days=2, hours=3), now) == "2\xa0days, 3\xa0hours ago"
    assert ago(None, now) == ""


def test_room_list_says_just_now_for_a_message_a_moment_ago(client, lobby):
    Message.objects.create(room=lobby, author_name="bob", body="hi", nonce="n1")
    html = client.get("/chats/").content.decode()
    assert "just now</time>" in html
    assert "0 minutes" not in html
