"""NAS-Bench-NLP: recurrent cells ("recipes") trained as language models on Penn Treebank and WikiText-2.

An architecture is the flattened recipe (the paper's nested ``recepie``): keys ``<node>_op`` and
``<node>_input_<k>`` for every node (``node_<n>``, and the new hidden states ``h_new_<n>``), values the op names
(``linear``, ``blend``, ``elementwise_sum``, ``elementwise_prod``, ``activation_tanh``, ``activation_sigm``,
``activation_leaky_relu``) and input names (``x``, ``h_prev_<n>``, ``node_<n>``).

The database ``nlp.db`` is made by ``python -m nni.nas.benchmarks.nlp.db_gen <folder of the release's JSON logs>``.
"""
from .model import NlpIntermediateStats, NlpTrialConfig, NlpTrialStats
from .query import query_nlp_trial_stats

__all__ = ["query_nlp_trial_stats", "NlpTrialConfig", "NlpTrialStats", "NlpIntermediateStats"]
