"""Forms whose names follow ``chat.names``: sign-up, the profile's display name, and the
admin's user forms."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import forms as auth_forms
from django.contrib.auth import get_user_model

from .identity import username_error
from .models import MAX_NAME_LENGTH


class UsernameRuleMixin:
    """``clean_username``: the name rule and no look-alike of a name in use (``chat.identity``)."""

    def clean_username(self) -> Any:
        parent = getattr(super(), "clean_username", None)
        username = parent() if parent is not None else self.cleaned_data.get("username")
        instance = getattr(self, "instance", None)
        pk = getattr(instance, "pk", None)
        if pk is not None and username == instance.get_username():
            # Editing a user without renaming it: a name from before this rule stays editable.
            return username
        error = username_error(username or "", pk)
        if error:
            raise forms.ValidationError(error, code="name_taken")
        return username


class SignUpForm(UsernameRuleMixin, auth_forms.UserCreationForm):
    """Django's sign-up form, refusing a username that looks like one in use (``аdmin``).

    For the project's user model (``AUTH_USER_MODEL``), asking for its ``USERNAME_FIELD``.
    """

    class Meta(auth_forms.UserCreationForm.Meta):
        model = get_user_model()
        fields = (model.USERNAME_FIELD,)


class AdminUserCreationForm(UsernameRuleMixin, auth_forms.AdminUserCreationForm):
    """The admin's "add user" form with the same rule."""


class AdminUserChangeForm(UsernameRuleMixin, auth_forms.UserChangeForm):
    """The admin's user form with the same rule (renaming a user)."""


class DisplayNameForm(forms.Form):
    """The profile's one field; the name rules are applied by ``identity.set_display_name``."""

    display_name = forms.CharField(
        label="Display name",
        required=False,
        max_length=MAX_NAME_LENGTH,
        strip=True,
        help_text=(
            "Shown beside your messages and in who is online. Leave empty to show your "
            "username. It may not look like a name someone else uses."
        ),
    )
