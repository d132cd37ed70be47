"""Inference: trained runs, exported model files and the zero-shot detector turn a video into events."""
