"""A host project's URL map, as docs/adding-chat.md tells a developer to write it: the whole chat
app under one prefix, next to the host's own pages, no chat account views."""

from django.http import HttpResponse
from django.urls import include, path

urlpatterns = [
    path("", lambda request: HttpResponse("the host's home page"), name="home"),
    path("accounts/login/", lambda request: HttpResponse("the host's sign-in"), name="login"),
    path("chats/", include("chat.urls")),
]
