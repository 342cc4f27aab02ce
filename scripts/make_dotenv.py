"""Prints a development .env with freshly generated secrets (standard library only)."""

import secrets

print(f"DJANGO_SECRET_KEY={secrets.token_urlsafe(48)}")
print(f"CHAT_SHARED_SECRET={secrets.token_urlsafe(48)}")
print(f"CHAT_DEMO_ADMIN_PASSWORD={secrets.token_urlsafe(12)}")
print("DJANGO_EMAIL_BACKEND=django.core.mail.backends.console.EmailBackend")
