"""Fault drills: real processes under load, killed, restarted, flooded and starved."""
