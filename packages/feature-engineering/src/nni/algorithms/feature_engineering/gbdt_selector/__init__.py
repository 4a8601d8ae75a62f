"""``GBDTSelector``: feature selection by LightGBM feature importance (LightGBM is imported when
the selector is fitted)."""
from __future__ import annotations

from .gbdt_selector import GBDTSelector

__all__ = ["GBDTSelector"]
