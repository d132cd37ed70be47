"""Benchmarks composed of real media: labelled sounds and photos on a known timeline, written as real videos."""
