"""Experiment manager: engine, store, REST API and the web UI."""
