"""The standalone Twisted chat server: rooms, fan-out, long polling, persistence through Django."""
