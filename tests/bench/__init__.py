"""Tests of the benchmark harness (bench/): its peers and the analysis of its numbers."""
