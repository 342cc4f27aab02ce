"""Account pages: sign-up (under the ``CHAT_SIGNUP`` policy), the profile (display name) and
password reset and change with Django's own views (``django.contrib.auth.views``).

Password reset mails go through Django's e-mail backend (``EMAIL_BACKEND``); reset requests are
rate-limited per client address and per e-mail address (``chat.ratelimits``). A password set
through a reset link or changed on the password page ends every open chat connection of the
user (``actions.user_access_revoked``): a stolen session's socket does not outlive the change,
and the user's own tabs reconnect with a fresh ticket.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages as flash
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.utils.decorators import method_decorator
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods

from . import actions, avatars, ratelimits
from .forms import DisplayNameForm, SignUpForm
from .identity import set_display_name, shown_name
from .signup_invites import invite_error


def _safe_next(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return reverse("chat:rooms")


def signup(request: HttpRequest) -> HttpResponse:
    """``/accounts/signup/``: create an account and sign it in, as ``CHAT_SIGNUP`` allows.

    ``open``: anyone. ``invite``: only with a valid invite (``?invite=`` on the link, carried in
    the form); without one, or with an expired or altered one, 403 with a page saying why.
    ``closed``: 403 with a page saying sign-up is closed.
    """
    policy = settings.CHAT_SIGNUP
    if policy == "closed":
        return render(request, "chat/registration/signup_closed.html", status=403)
    invite = request.POST.get("invite") or request.GET.get("invite") or ""
    if policy == "invite":
        error = invite_error(invite)
        if error:
            context = {"error": error}
            return render(request, "chat/registration/signup_invite.html", context, status=403)
    if request.method == "POST":
        form = SignUpForm(request.POST)
        if form.is_valid():
            user = form.save()
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            return HttpResponseRedirect(_safe_next(request))
    else:
        form = SignUpForm()
    context = {
        "form": form,
        "next": _safe_next(request),
        "invite": invite if policy == "invite" else "",
    }
    return render(request, "chat/registration/signup.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def profile(request: HttpRequest) -> HttpResponse:
    """``/accounts/profile/``: the signed-in user's display name (and its avatar).

    POST (CSRF protected) ``display_name``: accepted names are shown at once on every open tab
    (``identity.set_display_name``); a refused one leaves the old name and says why (400).
    """
    user = request.user
    status = 200
    if request.method == "POST":
        form = DisplayNameForm(request.POST)
        if form.is_valid():
            error = set_display_name(user, form.cleaned_data["display_name"])
            if error is None:
                flash.success(request, "Your display name was changed.")
                return redirect("chat:profile")
            form.add_error("display_name", error)
        status = 400
    else:
        form = DisplayNameForm(initial={"display_name": _display_name(user)})
    name = shown_name(user)
    context = {
        "form": form,
        "shown_name": name,
        "uid": f"u:{user.pk}",
        "avatar": avatars.avatar(f"u:{user.pk}", name),
    }
    return render(request, "chat/registration/profile.html", context, status=status)


def _display_name(user: Any) -> str:
    claim = getattr(user, "chat_name_claim", None)
    return claim.display_name if claim is not None else ""


class PasswordResetView(auth_views.PasswordResetView):
    """Django's reset request form: rate-limited per address and per e-mail (429 past it)."""

    template_name = "chat/registration/password_reset_form.html"
    email_template_name = "chat/registration/password_reset_email.txt"
    subject_template_name = "chat/registration/password_reset_subject.txt"
    success_url = reverse_lazy("chat:password_reset_done")

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        """Count the request; over a limit, answer 429 before any mail is sent."""
        retry_after = ratelimits.password_reset_limited(request)
        if retry_after is not None:
            response = render(
                request,
                "chat/registration/password_reset_limited.html",
                {"retry_after": retry_after},
                status=429,
            )
            response["Retry-After"] = str(retry_after)
            return response
        return super().post(request, *args, **kwargs)


class PasswordResetDoneView(auth_views.PasswordResetDoneView):
    """ "Check your mail" (shown whether or not the address has an account)."""

    template_name = "chat/registration/password_reset_done.html"


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    """The link from the mail: choose a new password (the link works once)."""

    template_name = "chat/registration/password_reset_confirm.html"
    success_url = reverse_lazy("chat:password_reset_complete")

    def form_valid(self, form: Any) -> HttpResponse:
        """Set the password, then end the user's open chat connections."""
        response = super().form_valid(form)
        actions.user_access_revoked(form.user.pk)
        return response


class PasswordResetCompleteView(auth_views.PasswordResetCompleteView):
    """ "Your password was set": a link to sign in."""

    template_name = "chat/registration/password_reset_complete.html"


@method_decorator(login_required, name="dispatch")
class PasswordChangeView(auth_views.PasswordChangeView):
    """Change the password (old one asked for); this session stays signed in."""

    template_name = "chat/registration/password_change_form.html"
    success_url = reverse_lazy("chat:password_change_done")

    def form_valid(self, form: Any) -> HttpResponse:
        """Change it, then end the user's open chat connections (tabs reconnect)."""
        response = super().form_valid(form)
        actions.user_access_revoked(form.user.pk)
        return response


class PasswordChangeDoneView(auth_views.PasswordChangeDoneView):
    """ "Your password was changed"."""

    template_name = "chat/registration/password_change_done.html"
