"""WSGI entry point: gunicorn serves `django_twisted_chat.wsgi:application`.

Like `manage.py`, it loads the development `.env` of the checkout when there is one (never over
variables already set), so gunicorn started by hand after `make run` finds the same secrets. A
deployment sets the variables in its environment; with neither, the settings refuse to start.
"""

import os
from pathlib import Path

from django.core.wsgi import get_wsgi_application
from dotenv import load_dotenv

load_dotenv(Path(__file__).resolve().parent.parent / ".env", override=False)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django_twisted_chat.settings")

application = get_wsgi_application()
