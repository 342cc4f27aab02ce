"""The Django Channels chat tutorial as a benchmark peer, served by Daphne.

A separate tiny Django project (its own settings, routing, consumer, SQLite database) shaped like
the official Channels tutorial's chat: a socket opened on `/ws/chat/<room>/` joins the group
`chat_<room>`, and every `{"message": ...}` it sends is relayed with `group_send` to everyone in
that group as `{"message": ...}`. It never imports `chat/` or `chatserver/`: it stands for what a
reader of the tutorials would build, not for this project.

Run (what `bench.targets.ChannelsTarget` does):

    DJANGO_SETTINGS_MODULE=bench.channels_peer.settings BENCH_CHANNELS_DB=/tmp/x/db.sqlite3 \
        python -m django migrate --noinput
    DJANGO_SETTINGS_MODULE=bench.channels_peer.settings BENCH_CHANNELS_DB=/tmp/x/db.sqlite3 \
        python -m daphne -b 127.0.0.1 -p 9200 bench.channels_peer.asgi:application
"""
