"""Frozen pretrained classifiers (teachers) that take a precomputed log-Mel spectrogram."""
