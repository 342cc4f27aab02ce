#!/usr/bin/env bash
# Runs the whole system: migrate, demo room and admin, then Django (gunicorn) and the chat server
# (twistd) side by side. Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin

set -a
# shellcheck disable=SC1091
source .env
set +a

export DJANGO_PORT="${DJANGO_PORT:-8000}"
export CHAT_PORT="${CHAT_PORT:-9000}"
export DJANGO_HOST="${DJANGO_HOST:-127.0.0.1}"
export CHAT_PUBLIC_URL="${CHAT_PUBLIC_URL:-http://127.0.0.1:${CHAT_PORT}}"
export CHAT_DJANGO_URL="${CHAT_DJANGO_URL:-http://127.0.0.1:${DJANGO_PORT}}"
export CHAT_ALLOWED_ORIGINS="${CHAT_ALLOWED_ORIGINS:-http://127.0.0.1:${DJANGO_PORT},http://localhost:${DJANGO_PORT}}"

$BIN/python manage.py migrate --noinput
$BIN/python manage.py collectstatic --noinput -v 0
$BIN/python manage.py ensuredemo

pids=()
stop() {
    trap - INT TERM EXIT
    echo "Stopping..."
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    wait || true
}
trap stop INT TERM EXIT

$BIN/gunicorn django_twisted_chat.wsgi:application \
    --bind "${DJANGO_HOST}:${DJANGO_PORT}" --worker-class gthread --workers 2 --threads 8 \
    --access-logfile - --no-control-socket &
pids+=($!)
$BIN/twistd --pidfile= -n -y chatserver.tac &
pids+=($!)

echo
echo "Chat:  http://127.0.0.1:${DJANGO_PORT}/chats/"
echo "Admin: http://127.0.0.1:${DJANGO_PORT}/admin/  (user: admin, password in .env: CHAT_DEMO_ADMIN_PASSWORD)"
echo "Press Ctrl-C to stop both servers."
# Either process exiting stops the other.
wait -n
