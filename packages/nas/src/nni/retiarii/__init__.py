"""Neural architecture search (Retiarii): model spaces, mutators, strategies, evaluators, one-shot trainers."""
