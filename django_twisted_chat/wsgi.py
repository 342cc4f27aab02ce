"""WSGI entry point: gunicorn serves `django_twisted_chat.wsgi:application`.

Like `manage.py`, it loads the development `.env` of the checkout when there is one (never over
variables already set), so gunicorn started by hand after `make run` finds the same secrets. A
deployment sets the variables in its environment; with neither, the settings refuse to start.
The chat server's message batches are answered by `chat.fastpath` in front of Django's handler.
"""

import os
from pathlib import Path

from django.core.wsgi import get_wsgi_application
from dotenv import load_dotenv

load_dotenv(Path(__file__).resolve().parent.parent / ".env", override=False)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django_twisted_chat.settings")

# The chat server's message batches skip Django's middleware and URL resolving (same checks, same
# answers: chat/fastpath.py); every other request goes to Django's handler.
django_application = get_wsgi_application()

from chat.fastpath import InternalFastPath  # noqa: E402 - its models need the app registry loaded above

application = InternalFastPath(django_application)
