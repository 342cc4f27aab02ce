#!/usr/bin/env bash
# Runs the whole system: migrate, demo room and admin, then Django (gunicorn) and the chat server
# (twistd) side by side under scripts/supervise.py, which prints the banner once both answer,
# restarts a process that crashes, and stops both on Ctrl-C. manage.py, wsgi.py and the
# supervisor read the development .env themselves (never over variables already set).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin

export DJANGO_PORT="${DJANGO_PORT:-8000}"
export CHAT_PORT="${CHAT_PORT:-9000}"
export DJANGO_HOST="${DJANGO_HOST:-127.0.0.1}"
export CHAT_PUBLIC_URL="${CHAT_PUBLIC_URL:-http://127.0.0.1:${CHAT_PORT}}"
export CHAT_DJANGO_URL="${CHAT_DJANGO_URL:-http://127.0.0.1:${DJANGO_PORT}}"
# Development mail goes to the console (password reset links are printed there), unless SMTP is
# configured; a .env written before this line existed has no DJANGO_EMAIL_BACKEND yet.
if [ -z "${DJANGO_EMAIL_BACKEND:-}${EMAIL_HOST:-}" ] && ! grep -qs '^\(DJANGO_EMAIL_BACKEND\|EMAIL_HOST\)=' .env; then
  export DJANGO_EMAIL_BACKEND=django.core.mail.backends.console.EmailBackend
fi
export CHAT_ALLOWED_ORIGINS="${CHAT_ALLOWED_ORIGINS:-http://127.0.0.1:${DJANGO_PORT},http://localhost:${DJANGO_PORT}}"

$BIN/python manage.py migrate --noinput -v 0
$BIN/python manage.py collectstatic --noinput -v 0
$BIN/python manage.py ensuredemo

exec $BIN/python scripts/supervise.py
