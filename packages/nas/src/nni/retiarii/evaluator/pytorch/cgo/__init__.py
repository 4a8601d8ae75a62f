"""Evaluators of the CGO (cross-graph optimization) execution engine: :mod:`.evaluator`."""
