"""The URL map: the admin and the chat app, laid out from the app's URL groups (chat/urls.py).

The project keeps the chat app's groups at the root (``/chats/``, ``/api/``, ``/internal/``,
``/accounts/``), the paths docs/protocol.md names. A host project instead mounts the whole app
under one prefix with ``include("chat.urls")`` (docs/adding-chat.md); either way every name is
in the ``chat`` namespace.
"""

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from chat import urls as chat_urls
from chat.ratelimits import sign_in_limited

chat_patterns = [
    path("", RedirectView.as_view(pattern_name="chat:rooms", permanent=False), name="home"),
    path("chats/", include(chat_urls.pages)),
    path("api/", include(chat_urls.api)),
    path("internal/", include(chat_urls.internal)),
    path("accounts/", include(chat_urls.accounts)),
    path("search/", include(chat_urls.search)),
    path("files/", include(chat_urls.files)),
]

urlpatterns = [
    # The admin's own sign-in form, under the same limits as /accounts/login/ (matched first).
    path("admin/login/", sign_in_limited(admin.site.login)),
    path("admin/", admin.site.urls),
    path("", include((chat_patterns, chat_urls.app_name))),
]
