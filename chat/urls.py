"""URLs of the chat app: pages, the public JSON API and the internal API, in the ``chat`` namespace.

A host project mounts all of it under one prefix, ``path("chats/", include("chat.urls"))``: the
room list at ``chats/``, a room at ``chats/<slug>/``, the JSON API under ``chats/api/`` and the
internal API the chat server calls under ``chats/internal/`` (the chat server's
``CHAT_DJANGO_URL`` then ends in ``/chats``; docs/adding-chat.md). Every link inside the app is
reversed in the ``chat`` namespace, so any prefix works.

The groups are also importable one by one (``pages``, ``api``, ``internal``, ``accounts``) for a
project that lays them out itself, as this repository's own ``django_twisted_chat/urls.py``
does. ``accounts`` (sign-in, sign-out, sign-up, profile, password reset and change) is not part
of ``urlpatterns``: a host project has its own; the app's sign-in links go to
``settings.LOGIN_URL``, and its other account links appear only when their names resolve.
"""

from django.contrib.auth import views as auth_views
from django.urls import include, path

from . import (
    account_views,
    attachment_views,
    attention_api,
    internal_api,
    lifecycle,
    ratelimits,
    room_views,
    views,
)
from . import api as api_views

app_name = "chat"

# Rooms and membership (chat/room_views.py). Listed before `<slug>/`: a room whose slug is one
# of these words is never created from the room list (chat/room_forms.py, RESERVED_SLUGS).
rooms = [
    path("new/", room_views.room_create, name="room_create"),
    path("invite/<str:token>/", room_views.invite_link_page, name="invite_link"),
    path(
        "invites/<int:invite_id>/accept/",
        room_views.answer_invite,
        {"answer": "accept"},
        name="invite_accept",
    ),
    path(
        "invites/<int:invite_id>/decline/",
        room_views.answer_invite,
        {"answer": "decline"},
        name="invite_decline",
    ),
    path("direct/<int:user_id>/", room_views.open_direct, name="direct"),
]

room_members = [
    path("<slug:slug>/members/", room_views.room_members, name="room_members"),
    path("<slug:slug>/members/invite/", room_views.invite_user, name="invite_user"),
    path("<slug:slug>/members/link/", room_views.invite_link, name="invite_make_link"),
    path(
        "<slug:slug>/members/<int:user_id>/remove/",
        room_views.remove_member,
        name="remove_member",
    ),
    path("<slug:slug>/members/<int:user_id>/owner/", room_views.make_owner, name="make_owner"),
    path(
        "<slug:slug>/invites/<int:invite_id>/revoke/",
        room_views.revoke_invite,
        name="revoke_invite",
    ),
    path("<slug:slug>/leave/", room_views.leave_room, name="leave_room"),
]

pages = [
    path("", views.room_list, name="rooms"),
    *rooms,
    path("<slug:slug>/", views.room_detail, name="room"),
    path("<slug:slug>/guest-name/", views.guest_name, name="guest_name"),
    *room_members,
]

api = [
    path("rooms/", api_views.room_list, name="api_rooms"),
    path("rooms/<slug:slug>/messages/", api_views.messages, name="api_messages"),
    path("rooms/<slug:slug>/ticket/", api_views.ticket, name="api_ticket"),
    path("rooms/<slug:slug>/attachments/", attachment_views.upload, name="api_attachments"),
    path("search/", api_views.search, name="api_search"),
    path("attention/", attention_api.summary, name="api_attention"),
    path("feed/ticket/", attention_api.feed_ticket, name="api_feed_ticket"),
    path("rooms/<slug:slug>/read/", attention_api.mark_read, name="api_read"),
    path("rooms/<slug:slug>/mute/", attention_api.mute, name="api_mute"),
    path("rooms/<slug:slug>/people/", attention_api.people, name="api_people"),
    path(
        "rooms/<slug:slug>/messages/<int:message_id>/edit/",
        lifecycle.edit_message,
        name="api_edit_message",
    ),
    path(
        "rooms/<slug:slug>/messages/<int:message_id>/delete/",
        lifecycle.delete_message,
        name="api_delete_message",
    ),
    path(
        "rooms/<slug:slug>/messages/<int:message_id>/react/",
        lifecycle.toggle_reaction,
        name="api_react",
    ),
]

internal = [
    path("health/", internal_api.health, name="internal_health"),
    path("messages/batch/", internal_api.message_batch, name="internal_batch"),
    path("rooms/<slug:slug>/", internal_api.room_detail, name="internal_room"),
    path("rooms/<slug:slug>/messages/", internal_api.room_messages, name="internal_messages"),
]

accounts = [
    path("login/", ratelimits.RateLimitedLoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("signup/", account_views.signup, name="signup"),
    path("profile/", account_views.profile, name="profile"),
    path("password-reset/", account_views.PasswordResetView.as_view(), name="password_reset"),
    path(
        "password-reset/done/",
        account_views.PasswordResetDoneView.as_view(),
        name="password_reset_done",
    ),
    path(
        "reset/<uidb64>/<token>/",
        account_views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "reset/done/",
        account_views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
    path("password-change/", account_views.PasswordChangeView.as_view(), name="password_change"),
    path(
        "password-change/done/",
        account_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
]

# Attachment files (`files/`): served after the room's read rule (chat/attachment_views.py).
files = [
    path("<str:token>/<str:name>", attachment_views.serve, name="attachment_file"),
]

# The search page (`search/`): its own group, so a project can lay it out beside the pages.
search = [
    path("", views.search, name="search"),
]

# Listed before the pages: under one prefix "api/", "internal/", "search/" and "files/" win over
# rooms with those slugs (such rooms are reachable in a project that lays the groups out itself,
# as django_twisted_chat/urls.py does).
urlpatterns = [
    path("api/", include(api)),
    path("internal/", include(internal)),
    path("search/", include(search)),
    path("files/", include(files)),
    *pages,
]
