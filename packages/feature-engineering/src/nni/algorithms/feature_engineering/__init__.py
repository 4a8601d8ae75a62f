"""Built-in feature selectors: ``gradient_selector.FeatureGradientSelector`` and
``gbdt_selector.GBDTSelector`` (import them from their modules; each pulls in its own heavy
dependency, torch or LightGBM, only when imported or fitted)."""
