"""Feature engineering: gradient and GBDT feature selectors."""
