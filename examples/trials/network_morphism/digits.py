"""NetworkMorphism example trial: train the network the tuner sends on scikit-learn's 8x8 digits
(one channel, 10 classes) for one epoch on the CPU and report the validation accuracy.

The tuner sends the network as the docs' graph JSON; ``json_to_graph`` turns it into a graph and
``produce_torch_model()`` into a ``torch.nn.Module`` taking (N, C, H, W) batches.
"""
import os

import nni
import torch
from nni.algorithms.hpo.networkmorphism_tuner.graph import json_to_graph
from sklearn.datasets import load_digits

torch.manual_seed(0)
torch.set_num_threads(1)


def build_graph_from_json(ir_model_json):
    """Build a pytorch model from the json representation."""
    graph = json_to_graph(ir_model_json)
    return graph.produce_torch_model()


def main():
    rcv_config = nni.get_next_parameter()
    if not rcv_config:  # standalone run (no experiment): the tuner's initial network
        from nni.algorithms.hpo.networkmorphism_tuner.graph import graph_to_json
        from nni.algorithms.hpo.networkmorphism_tuner.nn import CnnGenerator

        rcv_config = graph_to_json(CnnGenerator(10, (8, 8, 1)).generate(3, 16))
    net = build_graph_from_json(rcv_config)
    digits = load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0  # (N, 1, 8, 8)
    y = torch.tensor(digits.target)
    n_train = int(os.environ.get("DIGITS_TRAIN", "1400"))
    x_train, y_train, x_val, y_val = x[:n_train], y[:n_train], x[n_train:], y[n_train:]
    optimizer = torch.optim.Adam(net.parameters(), lr=0.01)
    net.train()
    for start in range(0, n_train, 200):  # one epoch, batches of 200
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(x_train[start:start + 200]), y_train[start:start + 200])
        loss.backward()
        optimizer.step()
    net.eval()
    with torch.no_grad():
        acc = (net(x_val).argmax(dim=1) == y_val).float().mean().item()
    nni.report_final_result(acc)


if __name__ == "__main__":
    main()
