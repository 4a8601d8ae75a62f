"""Neural architecture search (Retiarii): model spaces, mutators, graph IR, serializer; evaluators in ``nni.retiarii.evaluator``.

Model spaces are written with ``import nni.retiarii.nn.pytorch as nn`` (every ``torch.nn`` name plus the
mutation primitives). This package imports torch; it never imports the NNI manager or web server.
"""
from .fixed import fixed_arch
from .graph import Edge, Graph, IllegalGraphError, Model, ModelStatus, Mutation, Node, Operation
from .mutator import InvalidMutation, Mutator, Sampler
from .serializer import serialize, serialize_cls
from .utils import ContextStack, label_scope
from .wrapper import basic_unit, get_init_args, model_wrapper

__all__ = [
    'model_wrapper', 'basic_unit', 'get_init_args', 'fixed_arch', 'label_scope', 'ContextStack',
    'Model', 'ModelStatus', 'Graph', 'Node', 'Edge', 'Operation', 'Mutation', 'IllegalGraphError',
    'Mutator', 'Sampler', 'InvalidMutation', 'serialize', 'serialize_cls',
]

