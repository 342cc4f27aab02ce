"""Benchmarks for the chat server: a load generator, a bare Autobahn reference and reports.

`python -m bench` (or `make bench`) runs every scenario against the reference broadcaster and the
real system side by side and prints JSON; see docs/performance.md.
"""
