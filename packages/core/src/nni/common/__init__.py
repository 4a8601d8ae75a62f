"""Shared pieces for NNI algorithms and the experiment front: search-space model and helpers."""
