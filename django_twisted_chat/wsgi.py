"""WSGI entry point: gunicorn serves `django_twisted_chat.wsgi:application`."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django_twisted_chat.settings")

application = get_wsgi_application()
