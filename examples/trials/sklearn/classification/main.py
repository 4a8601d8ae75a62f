"""Tune an SVC on scikit-learn's digits dataset (NNI's sklearn classification example).

Run it through NNI (``nnictl create --config config.yml`` or ``python launch.py``) or on its
own (``python main.py``: standalone mode, default parameters).
"""
import logging

from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

import nni

LOG = logging.getLogger("sklearn_classification")


def load_data():
    digits = load_digits()
    X_train, X_test, y_train, y_test = train_test_split(digits.data, digits.target, random_state=99, test_size=0.25)
    scaler = StandardScaler()
    return scaler.fit_transform(X_train), scaler.transform(X_test), y_train, y_test


def get_default_parameters():
    return {"C": 1.0, "kernel": "linear", "degree": 3, "gamma": 0.01, "coef0": 0.01}


def run(X_train, X_test, y_train, y_test, params):
    model = SVC(**params)
    model.fit(X_train, y_train)
    score = model.score(X_test, y_test)
    LOG.debug("score: %s", score)
    nni.report_final_result(score)


if __name__ == "__main__":
    X_train, X_test, y_train, y_test = load_data()
    params = get_default_parameters()
    params.update(nni.get_next_parameter() or {})
    run(X_train, X_test, y_train, y_test, params)
