"""PyTorch implementation of compression v2."""
