"""Population Based Training example: softmax regression (numpy) on scikit-learn's digits.

Each trial is one PBT *step*: it loads the model from ``params['load_checkpoint_dir']`` (when a
checkpoint is there), trains one epoch with the step's hyper-parameters, saves the model to
``params['save_checkpoint_dir']`` and reports the test accuracy. Run it with
``nnictl create --config config.yml``, or on its own (``python main.py``: one step in a temporary
folder with default parameters).
"""
import os
import tempfile

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

import nni

CHECKPOINT = "model.npz"


def load_data():
    digits = load_digits()
    x_train, x_test, y_train, y_test = train_test_split(digits.data, digits.target, random_state=0, test_size=0.3)
    scaler = StandardScaler()
    return scaler.fit_transform(x_train), scaler.transform(x_test), y_train, y_test


def load_checkpoint(folder, n_features, n_classes):
    path = os.path.join(folder, CHECKPOINT)
    if os.path.exists(path):
        data = np.load(path)
        return data["w"], data["b"], int(data["epochs"])
    return np.zeros((n_features, n_classes)), np.zeros(n_classes), 0


def save_checkpoint(folder, w, b, epochs):
    os.makedirs(folder, exist_ok=True)
    np.savez(os.path.join(folder, CHECKPOINT), w=w, b=b, epochs=epochs)


def train_one_epoch(w, b, x, y, lr, batch_size, weight_decay, rng):
    onehot = np.eye(w.shape[1])[y]
    order = rng.permutation(len(x))
    for start in range(0, len(x), batch_size):
        idx = order[start:start + batch_size]
        logits = x[idx] @ w + b
        logits -= logits.max(axis=1, keepdims=True)
        prob = np.exp(logits)
        prob /= prob.sum(axis=1, keepdims=True)
        grad = (prob - onehot[idx]) / len(idx)
        w -= lr * (x[idx].T @ grad + weight_decay * w)
        b -= lr * grad.sum(axis=0)
    return w, b


def main(params):
    x_train, x_test, y_train, y_test = load_data()
    w, b, epochs = load_checkpoint(params["load_checkpoint_dir"], x_train.shape[1], 10)
    rng = np.random.default_rng(epochs)
    w, b = train_one_epoch(w, b, x_train, y_train, params["lr"], int(params["batch_size"]), params["weight_decay"], rng)
    save_checkpoint(params["save_checkpoint_dir"], w, b, epochs + 1)
    accuracy = float(((x_test @ w + b).argmax(axis=1) == y_test).mean())
    nni.report_final_result(accuracy)


if __name__ == "__main__":
    folder = tempfile.mkdtemp(prefix="pbt-standalone-")
    defaults = {"lr": 0.05, "batch_size": 32, "weight_decay": 1e-4,
                "load_checkpoint_dir": folder, "save_checkpoint_dir": folder}
    received = nni.get_next_parameter() or {}
    main({**defaults, **received})
