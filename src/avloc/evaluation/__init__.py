"""Metrics and evaluators. The package imports nothing, so the NumPy-only ``detection`` loads without torch;
the registry imports the evaluator modules (``segments``, ``dense_map``) that register themselves."""
