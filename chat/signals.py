"""Keep ``NameClaim`` rows in step with registered users (their usernames are held for good)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db.models.signals import post_save


def _user_saved(
    sender: Any, instance: Any, raw: bool = False, update_fields: Any = None, **kwargs: Any
) -> None:
    if raw:
        return  # loading fixtures: the claim rows come with them or from the migration
    if update_fields is not None and instance.USERNAME_FIELD not in update_fields:
        return  # e.g. the last_login update at every sign-in: the username did not change
    from .identity import hold_username

    hold_username(instance)


def connect() -> None:
    """Connect the receivers (called once from ``ChatConfig.ready``).

    A deleted user's claim goes with it (``NameClaim.user`` cascades).
    """
    post_save.connect(_user_saved, sender=get_user_model(), dispatch_uid="chat.hold_username")
