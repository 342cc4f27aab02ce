"""What the room list shows a reader: the rooms it may enter with their member count and its own
membership, its direct conversations (a section of their own, named after the other person),
and the invitations waiting for its answer."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce

from .membership import Invite, Membership
from .models import Room


def context(user: User | AnonymousUser, rooms: QuerySet[Room]) -> dict[str, Any]:
    """Template context of the room list for ``user``; ``rooms`` are the open rooms it may
    enter (``chat.api.rooms_with_activity``)."""
    counts = (
        Membership.objects.filter(room=OuterRef("pk"))
        .values("room")
        .annotate(n=Count("pk"))
        .values("n")
    )
    rooms = rooms.annotate(
        member_count=Coalesce(Subquery(counts, output_field=IntegerField()), Value(0))
    )
    if not user.is_authenticated:
        return {"rooms": list(rooms), "direct_rooms": [], "invitations": []}
    mine = Membership.objects.filter(room=OuterRef("pk"), user=user).values("role")[:1]
    rooms = rooms.annotate(my_role=Subquery(mine))
    listed, direct = [], []
    for room in rooms:
        (direct if room.direct_key else listed).append(room)
    others = {
        m.room_id: m.user
        for m in Membership.objects.filter(room__in=[r.pk for r in direct])
        .exclude(user=user)
        .select_related("user")
    }
    direct_rooms = [
        {"room": room, "other": others.get(room.pk)}
        for room in sorted(direct, key=lambda r: r.last_activity or r.created_at, reverse=True)
    ]
    invitations = list(
        Invite.objects.usable()
        .filter(invitee=user, room__is_archived=False)
        .select_related("room", "created_by")
    )
    return {"rooms": listed, "direct_rooms": direct_rooms, "invitations": invitations}
