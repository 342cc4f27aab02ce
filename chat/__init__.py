"""The Django app: rooms, messages, pages, admin, JSON API and socket tickets."""
