"""URLs of the chat app: pages, accounts, the public JSON API and the internal API."""

from django.contrib.auth import views as auth_views
from django.urls import path
from django.views.generic import RedirectView

from . import api, internal_api, ratelimits, views

app_name = "chat"

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="chat:rooms", permanent=False), name="home"),
    path("chats/", views.room_list, name="rooms"),
    path("chats/<slug:slug>/", views.room_detail, name="room"),
    path("chats/<slug:slug>/guest-name/", views.guest_name, name="guest_name"),
    path("accounts/login/", ratelimits.RateLimitedLoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/signup/", views.signup, name="signup"),
    path("api/rooms/", api.room_list, name="api_rooms"),
    path("api/rooms/<slug:slug>/messages/", api.messages, name="api_messages"),
    path("api/rooms/<slug:slug>/ticket/", api.ticket, name="api_ticket"),
    path("api/search/", api.search, name="api_search"),
    path("search/", views.search, name="search"),
    path("internal/health/", internal_api.health, name="internal_health"),
    path("internal/messages/batch/", internal_api.message_batch, name="internal_batch"),
    path("internal/rooms/<slug:slug>/", internal_api.room_detail, name="internal_room"),
    path(
        "internal/rooms/<slug:slug>/messages/",
        internal_api.room_messages,
        name="internal_messages",
    ),
]
