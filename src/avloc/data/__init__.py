"""Datasets, synthetic data writers and feature-file readers."""
