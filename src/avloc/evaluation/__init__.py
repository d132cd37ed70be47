"""Metrics and evaluators (registered in avloc.catalog). The package imports nothing, so the NumPy-only
``detection`` loads without torch."""
