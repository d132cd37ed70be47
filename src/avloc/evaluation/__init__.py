"""Metrics and evaluators (registered in avloc.catalog)."""
