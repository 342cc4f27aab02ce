"""The URL map: the admin, Django's auth views and the chat app."""

from django.contrib import admin
from django.urls import include, path

from chat.ratelimits import sign_in_limited

urlpatterns = [
    # The admin's own sign-in form, under the same limits as /accounts/login/ (matched first).
    path("admin/login/", sign_in_limited(admin.site.login)),
    path("admin/", admin.site.urls),
    path("", include("chat.urls")),
]
