"""Names of NAS-Bench-NLP: datasets, the recipe's operations and how its keys are formed."""
import re

DATASETS = ["ptb", "wikitext-2"]
OPS = ["linear", "blend", "elementwise_sum", "elementwise_prod", "activation_tanh", "activation_sigm",
       "activation_leaky_relu"]
#: a flattened recipe key: ``<node>_op`` or ``<node>_input_<k>``
ARCH_KEY = re.compile(r"^(node_\d+|h_new_\d+)_(op|input_\d+)$")
