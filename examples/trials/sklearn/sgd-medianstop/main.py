"""Train an SGD classifier on scikit-learn's digits dataset epoch by epoch, reporting the
test accuracy after each epoch; the Medianstop assessor stops trials that fall behind."""
import warnings

import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import SGDClassifier
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

import nni

EPOCHS = 10


def main(params):
    digits = load_digits()
    X_train, X_test, y_train, y_test = train_test_split(digits.data, digits.target, random_state=7, test_size=0.3)
    scaler = StandardScaler().fit(X_train)
    X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
    model = SGDClassifier(
        loss=params["loss"], alpha=params["alpha"], learning_rate="constant", eta0=params["eta0"], random_state=0
    )
    classes = np.unique(digits.target)
    score = 0.0
    for _ in range(EPOCHS):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.partial_fit(X_train, y_train, classes=classes)
        score = model.score(X_test, y_test)
        nni.report_intermediate_result(score)
    nni.report_final_result(score)


if __name__ == "__main__":
    params = {"loss": "hinge", "alpha": 1e-4, "eta0": 0.01}
    params.update(nni.get_next_parameter() or {})
    main(params)
