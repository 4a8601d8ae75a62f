"""An annotated trial (NNI annotation): runs as plain Python, and after conversion under NNI."""
from __future__ import annotations

import json

from helpers.model import Model


def relu(x):
    return max(x, 0.0)


def tanh(x):
    return -1.0 if x < 0 else 1.0


def max_pool(values, size):
    return max(values[:size])


def avg_pool(values, size):
    return sum(values[:size]) / size


def train():
    '''@nni.get_next_parameter()'''
    '''@nni.variable(nni.choice(0.1, 0.01, 0.001), name=learning_rate)'''
    learning_rate = 0.1
    """@nni.variable(nni.choice(relu, tanh), name=activation)"""
    activation = relu
    '''@nni.variable(nni.randint(2, 5), name=layers)'''
    layers = 3
    '''@nni.variable(nni.uniform(0.1, 0.5), name=dropout)'''
    dropout: float = 0.5
    '''@nni.variable(nni.quniform(1, 10, 1), name=epochs)'''
    epochs = 2
    '''@nni.variable(nni.loguniform(1e-5, 1e-1), name=weight_decay)'''
    weight_decay = 1e-4
    '''@nni.variable(nni.qloguniform(16, 256, 16), name=batch_size)'''
    batch_size = 32
    '''@nni.variable(nni.normal(0, 1), name=shift)'''
    shift = 0.0
    '''@nni.variable(nni.qnormal(0, 1, 0.5), name=qshift)'''
    qshift = 0.5
    '''@nni.variable(nni.lognormal(0, 1), name=scale)'''
    scale = 1.0
    '''@nni.variable(nni.qlognormal(0, 1, 1), name=qscale)'''
    qscale = 1.0
    '''@nni.variable(nni.choice(nni.uniform(0, 1), 7), name=mixed)'''
    mixed = 7
    values = [3.0, 1.0, 2.0]
    """@nni.function_choice(max_pool(values, 2), avg_pool(values, 2), name=max_pool)"""
    pooled = max_pool(values, 2) * 10
    '''@nni.function_choice(max_pool(values, 3), avg_pool(values, 3))'''
    pooled3 = max_pool(values, 3)
    model = Model()
    accuracy = 0.0
    for epoch in range(int(epochs)):
        accuracy = round(0.5 + 0.1 * epoch, 3)
        '''@nni.training_update(tf=None, session=model)'''
        """@nni.report_intermediate_result(
            accuracy
        )"""
    '''@nni.report_final_result(accuracy)'''
    print(json.dumps({
        'learning_rate': learning_rate, 'activation': activation.__name__, 'layers': layers,
        'dropout': dropout, 'epochs': epochs, 'weight_decay': weight_decay, 'batch_size': batch_size,
        'shift': shift, 'qshift': qshift, 'scale': scale, 'qscale': qscale, 'mixed': mixed,
        'pooled': pooled, 'pooled3': pooled3, 'width': model.width, 'accuracy': accuracy,
    }, sort_keys=True))


if __name__ == '__main__':
    train()
