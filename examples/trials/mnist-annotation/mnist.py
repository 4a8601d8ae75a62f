"""MNIST with NNI annotation (NNI v2.5's ``mnist-annotation`` example) on scikit-learn's digits.

NNI v2.5's example trains a TensorFlow network on MNIST. This one keeps its annotations (tune
``batch_size`` and ``dropout_rate``, report the test accuracy every 100 steps, then as the final
result) and adds a ``@nni.function_choice`` and two more variables; the model is a small numpy
network (pooling, one hidden layer with dropout, softmax) on the 8x8 digits, so a trial takes
about a second.

The annotations are plain strings, so ``python3 mnist.py`` runs the defaults written below.
``nnictl create --config config.yml`` (``useAnnotation: true``) tunes them, and
``nnictl ss_gen --trial_command "python3 mnist.py"`` writes the search space they declare.
"""
import argparse
import importlib.util
import logging
import os

import numpy as np

logger = logging.getLogger('mnist_AutoML')

IMAGE_SIDE = 8
NUM_CLASSES = 10


def max_pool(images, pool_size):
    """Maximum over ``pool_size`` x ``pool_size`` windows of flattened 8x8 images."""
    return _windows(images, pool_size).max(axis=(2, 4)).reshape(len(images), -1)


def avg_pool(images, pool_size):
    """Mean over ``pool_size`` x ``pool_size`` windows of flattened 8x8 images."""
    return _windows(images, pool_size).mean(axis=(2, 4)).reshape(len(images), -1)


def _windows(images, pool_size):
    side = IMAGE_SIDE // pool_size
    return images.reshape(len(images), side, pool_size, side, pool_size)


def pool_features(images, pool_size):
    """@nni.function_choice(max_pool(images, pool_size), avg_pool(images, pool_size), name=max_pool)"""
    return max_pool(images, pool_size)


class MnistNetwork:
    """Pooled pixels -> ReLU hidden layer (with dropout while training) -> softmax."""

    def __init__(self, input_size, learning_rate, seed):
        """@nni.variable(nni.choice(32, 64, 128), name=self.hidden_size)"""
        self.hidden_size = 64
        self.learning_rate = learning_rate
        self.rng = np.random.default_rng(seed)
        self.w1 = self.rng.normal(0, 1 / np.sqrt(input_size), (input_size, self.hidden_size))
        self.b1 = np.zeros(self.hidden_size)
        self.w2 = self.rng.normal(0, 1 / np.sqrt(self.hidden_size), (self.hidden_size, NUM_CLASSES))
        self.b2 = np.zeros(NUM_CLASSES)

    def train_step(self, images, labels, dropout_rate):
        """One step of gradient descent on the cross-entropy; ``dropout_rate`` of the hidden units dropped."""
        pre = images @ self.w1 + self.b1
        keep = (self.rng.random(pre.shape) >= dropout_rate) / (1.0 - dropout_rate)
        hidden = np.maximum(pre, 0) * keep
        grad = _softmax(hidden @ self.w2 + self.b2)
        grad[np.arange(len(labels)), labels] -= 1
        grad /= len(labels)
        grad_hidden = (grad @ self.w2.T) * keep * (pre > 0)
        self.w2 -= self.learning_rate * hidden.T @ grad
        self.b2 -= self.learning_rate * grad.sum(axis=0)
        self.w1 -= self.learning_rate * images.T @ grad_hidden
        self.b1 -= self.learning_rate * grad_hidden.sum(axis=0)

    def accuracy(self, images, labels):
        hidden = np.maximum(images @ self.w1 + self.b1, 0)
        return float(np.mean((hidden @ self.w2 + self.b2).argmax(axis=1) == labels))


def _softmax(logits):
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def load_digits():
    """scikit-learn's digits (1797 8x8 images, 16 grey levels) as ``(images, labels)``."""
    # read the file scikit-learn ships: importing sklearn would take longer than the training
    sklearn_dir = importlib.util.find_spec('sklearn').submodule_search_locations[0]
    path = os.path.join(sklearn_dir, 'datasets', 'data', 'digits.csv.gz')
    if os.path.exists(path):
        data = np.loadtxt(path, delimiter=',')
        return data[:, :-1], data[:, -1].astype(int)
    from sklearn.datasets import load_digits as sklearn_load_digits
    digits = sklearn_load_digits()
    return digits.data, digits.target


def load_data(seed):
    """Train and test images (scaled to [0, 1]) and labels: a seeded 75/25 split."""
    images, labels = load_digits()
    order = np.random.default_rng(seed).permutation(len(images))
    images, labels = images[order] / 16.0, labels[order]
    cut = len(images) * 3 // 4
    return images[:cut], images[cut:], labels[:cut], labels[cut:]


def main(params):
    train_images, test_images, train_labels, test_labels = load_data(params['seed'])
    train_images = pool_features(train_images, params['pool_size'])
    test_images = pool_features(test_images, params['pool_size'])
    """@nni.variable(nni.uniform(0.05, 0.5), name=learning_rate)"""
    learning_rate = 0.2
    mnist_network = MnistNetwork(train_images.shape[1], learning_rate, params['seed'])
    rng = np.random.default_rng(params['seed'])

    test_acc = 0.0
    """@nni.variable(nni.choice(50, 250, 500), name=batch_size)"""
    batch_size = 128
    for i in range(params['batch_num']):
        batch = rng.choice(len(train_images), size=batch_size, replace=False)
        """@nni.variable(nni.choice(0.1, 0.5), name=dropout_rate)"""
        dropout_rate = 0.5
        mnist_network.train_step(train_images[batch], train_labels[batch], dropout_rate)
        if i % 100 == 0:
            test_acc = mnist_network.accuracy(test_images, test_labels)
            """@nni.report_intermediate_result(test_acc)"""

    test_acc = mnist_network.accuracy(test_images, test_labels)
    """@nni.report_final_result(test_acc)"""
    print(f'Final test accuracy: {test_acc:.4f}')


def get_params():
    """Settings that are not tuned."""
    parser = argparse.ArgumentParser()
    parser.add_argument('--pool_size', type=int, default=2, choices=[1, 2, 4])
    parser.add_argument('--batch_num', type=int, default=500)
    parser.add_argument('--seed', type=int, default=0)
    args, _ = parser.parse_known_args()
    return vars(args)


if __name__ == '__main__':
    try:
        main(get_params())
    except Exception as exception:
        logger.exception(exception)
        raise
