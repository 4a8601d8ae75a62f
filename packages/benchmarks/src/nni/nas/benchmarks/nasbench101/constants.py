"""Operator names of NAS-Bench-101 (the ``op<i>`` values of an ``arch`` dict)."""
INPUT = "input"
OUTPUT = "output"
CONV3X3_BN_RELU = "conv3x3-bn-relu"
CONV1X1_BN_RELU = "conv1x1-bn-relu"
MAXPOOL3X3 = "maxpool3x3"

#: The operators a vertex between input and output may take, in the order the hash labels them.
LABEL2ID = {CONV3X3_BN_RELU: 0, CONV1X1_BN_RELU: 1, MAXPOOL3X3: 2}
