"""Operator names of NAS-Bench-201 (the values of an ``arch`` dict)."""
NONE = "none"
SKIP_CONNECT = "skip_connect"
CONV_1X1 = "conv_1x1"
CONV_3X3 = "conv_3x3"
AVG_POOL_3X3 = "avg_pool_3x3"

PRIMITIVES = [NONE, SKIP_CONNECT, CONV_1X1, CONV_3X3, AVG_POOL_3X3]
#: The keys of an ``arch`` dict: edge ``i_j`` goes from node i to node j.
EDGES = ["0_1", "0_2", "0_3", "1_2", "1_3", "2_3"]
DATASETS = ["cifar10-valid", "cifar10", "cifar100", "imagenet16-120"]
