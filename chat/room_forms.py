"""Forms of the room pages: creating a room, inviting by username, making an invitation link."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.utils.text import slugify

from .invites import DEFAULT_LINK_LIFETIME, LINK_LIFETIMES
from .models import VISIBILITY_CHOICES, Room

# Slugs a new room never takes: the app's own URLs under the room list (chat/urls.py) and the
# prefix of direct conversations (chat/direct.py).
RESERVED_SLUGS = {
    "api",
    "internal",
    "search",
    "files",
    "new",
    "invite",
    "invites",
    "direct",
    "static",
}
SLUG_BASE = 40


class RoomCreateForm(forms.ModelForm):
    """Name, description and who may enter; the slug is made from the name."""

    class Meta:
        model = Room
        fields = ["name", "description", "visibility"]
        widgets = {
            "visibility": forms.RadioSelect,
            "description": forms.TextInput,
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["visibility"].choices = VISIBILITY_CHOICES
        self.fields["visibility"].initial = "private"

    def clean_name(self) -> str:
        """A name is trimmed and not blank."""
        name = (self.cleaned_data.get("name") or "").strip()
        if not name:
            raise forms.ValidationError("Give the room a name.")
        return name


def slug_candidates(name: str) -> list[str]:
    """Slugs to try for a room called ``name``, best first (``general``, ``general-2``, ...)."""
    base = slugify(name)[:SLUG_BASE].strip("-") or "room"
    if base in RESERVED_SLUGS or base.startswith("dm-"):
        base = f"room-{base}"[:SLUG_BASE]
    return [base] + [f"{base}-{n}" for n in range(2, 10)]


class InviteUserForm(forms.Form):
    """Invite one signed-up user by username."""

    username = forms.CharField(max_length=150, label="Username")

    def clean_username(self) -> Any:
        """The active user with this username (exactly as spelled), else an error."""
        name = self.cleaned_data["username"].strip()
        model = get_user_model()
        user = model.objects.filter(**{model.USERNAME_FIELD: name}, is_active=True).first()
        if user is None:
            raise forms.ValidationError("No user has that name (guests cannot be invited).")
        return user


class InviteLinkForm(forms.Form):
    """Make a link: how long it lasts, and whether one person or several may use it."""

    lifetime = forms.TypedChoiceField(
        choices=list(LINK_LIFETIMES.items()),
        coerce=int,
        initial=DEFAULT_LINK_LIFETIME,
        label="Valid for",
    )
    single_use = forms.BooleanField(required=False, initial=True, label="One person only")
