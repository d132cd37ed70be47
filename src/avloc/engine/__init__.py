"""Training engine: one loop for every method, checkpoints, distributed helpers."""
