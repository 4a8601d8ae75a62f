"""Graph IR: ``Model``, ``Graph``, ``Node``, ``Edge``, ``Operation``.

A :class:`Model` is one trainable snapshot: a set of graphs (``root_graph`` plus the subgraphs that
``_cell`` operations refer to), the evaluator, and the mutation history. Mutators change a model in the
``Mutating`` state; it is then ``Frozen`` and can be trained, or forked into a new model to mutate.

A model of the pure-python engine has no graphs: it carries the class and init arguments of the
``@model_wrapper`` model space and ``sample``, the architecture dict (label -> value) chosen so far.

Ids: graphs and nodes get ids from one process-wide counter, and ``fork`` keeps them, so the same id in
two models means semantically the same graph or node.
"""
from __future__ import annotations

import copy
import itertools
from enum import Enum
from typing import Any, Dict, Iterable, List, Optional, Tuple, Union

__all__ = ['Model', 'ModelStatus', 'Graph', 'Node', 'Edge', 'Operation', 'Cell', 'Mutation', 'IllegalGraphError']

_ids = itertools.count(1)


def uid() -> int:
    return next(_ids)


class IllegalGraphError(ValueError):
    """A graph operation would break the graph (duplicate node name, edge across graphs, ...)."""


def _private(cls_name: str, internal: bool) -> None:
    if not internal:
        raise RuntimeError(f'{cls_name}() is internal; use the factory methods (Graph.add_node, Graph.add_edge, Operation.new, ...)')


class ModelStatus(Enum):
    Mutating = 'mutating'
    Frozen = 'frozen'
    Training = 'training'
    Trained = 'trained'
    Failed = 'failed'


class Mutation:
    """One entry of ``Model.history``: ``mutator`` turned ``from_model`` into ``to_model`` with the choices ``samples``."""

    def __init__(self, mutator: Any, samples: List[Any], from_model: 'Model', to_model: 'Model'):
        self.mutator = mutator
        self.samples = samples
        self.from_model = from_model
        self.to_model = to_model

    def __repr__(self) -> str:
        return f'Mutation(mutator={self.mutator!r}, samples={self.samples!r})'


class Operation:
    """A naive record of an op: ``type`` (e.g. ``'Conv2d'``; a leading ``_`` marks a special op) and ``parameters``.

    Do not construct or mutate it: create a new one with :meth:`new` and put it on a node.
    """

    def __init__(self, type_name: str, parameters: Optional[Dict[str, Any]] = None, _internal: bool = False,
                 attributes: Optional[Dict[str, Any]] = None):
        _private('Operation', _internal)
        if not isinstance(type_name, str) or not type_name:
            raise ValueError(f'Operation: type must be a non-empty string, got {type_name!r}')
        self.type = type_name
        self.parameters: Dict[str, Any] = dict(parameters or {})
        self.attributes: Dict[str, Any] = dict(attributes or {})

    @staticmethod
    def new(type_name: str, parameters: Optional[Dict[str, Any]] = None, cell_name: Optional[str] = None,
            attributes: Optional[Dict[str, Any]] = None) -> 'Operation':
        """Create an operation; ``type_name='_cell'`` with ``cell_name`` creates a reference to a subgraph."""
        if type_name == '_cell':
            if not cell_name:
                raise ValueError("Operation.new: type '_cell' needs cell_name, the name of the referenced graph")
            return Cell(cell_name, parameters, attributes)
        return Operation(type_name, parameters, _internal=True, attributes=attributes)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.type == self.type and other.parameters == self.parameters  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash(self.type)

    def __repr__(self) -> str:
        return f'Operation({self.type!r}, {self.parameters!r})'


class Cell(Operation):
    """An operation that stands for the graph named ``cell_name`` of the same model (an opaque subgraph)."""

    def __init__(self, cell_name: str, parameters: Optional[Dict[str, Any]] = None, attributes: Optional[Dict[str, Any]] = None):
        super().__init__('_cell', parameters, _internal=True, attributes=attributes)
        self.cell_name = cell_name

    def __eq__(self, other: object) -> bool:
        return super().__eq__(other) and other.cell_name == self.cell_name  # type: ignore[attr-defined]

    __hash__ = Operation.__hash__

    def __repr__(self) -> str:
        return f'Cell({self.cell_name!r}, {self.parameters!r})'


class _IOOperation(Operation):
    def __init__(self, type_name: str, io_names: Optional[List[str]] = None):
        super().__init__(type_name, {}, _internal=True)
        self.io_names = list(io_names or [])


class Model:
    """One trainable snapshot of a model (see the module docstring). Created by converters and engines.

    Attributes:
        python_class / python_init_args / python_init_params: the class the model comes from and its init
            arguments (positional, keyword): enough to re-create it.
        status: a :class:`ModelStatus`.
        graphs: ``name -> Graph``; ``root_graph`` is the outermost one (``None`` for pure-python models).
        sample: the architecture dict (label -> chosen value) of pure-python models; empty otherwise.
        evaluator: what trains and scores the model.
        history: the :class:`Mutation` list; ``history[0].from_model`` is the base model and
            ``history[-1].to_model`` is this one.
        metric / intermediate_metrics: training results (``None`` / ``[]`` until trained).
    """

    def __init__(self, _internal: bool = False):
        _private('Model', _internal)
        self.model_id = uid()
        self.python_class: Optional[type] = None
        self.python_init_args: tuple = ()
        self.python_init_params: Dict[str, Any] = {}
        self.status = ModelStatus.Mutating
        self._root_graph_name = '_model'
        self.graphs: Dict[str, Graph] = {}
        self.sample: Dict[str, Any] = {}
        self.evaluator: Any = None
        self.history: List[Mutation] = []
        self.metric: Any = None
        self.intermediate_metrics: List[Any] = []
        # what the converter keeps for code generation (a traced torch.fx GraphModule); never mutated
        self.template: Any = None

    @property
    def root_graph(self) -> Optional['Graph']:
        return self.graphs.get(self._root_graph_name)

    def fork(self) -> 'Model':
        """A new model in the ``Mutating`` state with the same topology, names and ids (only from a frozen model)."""
        if self.status != ModelStatus.Frozen:
            raise RuntimeError(f'Model.fork: only a frozen model can be forked, this one is {self.status.value}')
        new = Model(_internal=True)
        new.python_class = self.python_class
        new.python_init_args = self.python_init_args
        new.python_init_params = self.python_init_params
        new._root_graph_name = self._root_graph_name
        new.sample = copy.deepcopy(self.sample)
        new.evaluator = self.evaluator
        new.history = list(self.history)
        new.template = self.template
        for graph in self.graphs.values():
            graph._fork_to(new)
        return new

    def freeze(self) -> 'Model':
        self.status = ModelStatus.Frozen
        return self

    def get_nodes(self) -> List['Node']:
        return [node for graph in self.graphs.values() for node in graph.nodes]

    def get_node_by_name(self, node_name: str) -> Optional['Node']:
        matches = [node for node in self.get_nodes() if node.name == node_name]
        return matches[0] if matches else None

    def get_nodes_by_label(self, label: str) -> List['Node']:
        """All nodes (of every graph) with this label; nodes with one label share a mutator's choice."""
        return [node for node in self.get_nodes() if node.label == label]

    def get_nodes_by_type(self, type_name: str) -> List['Node']:
        return [node for node in self.get_nodes() if node.operation.type == type_name]

    def __repr__(self) -> str:
        return f'Model(model_id={self.model_id}, status={self.status.value}, graphs={list(self.graphs)}, sample={self.sample})'


class Graph:
    """The topology of one (sub)graph of a model: input node, output node, hidden nodes and edges."""

    def __init__(self, model: Model, graph_id: int, name: Optional[str] = None, _internal: bool = False):
        _private('Graph', _internal)
        self.model = model
        self.id = graph_id
        self.name = name or f'_generated_{graph_id}'
        if self.name in model.graphs:
            raise IllegalGraphError(f'Graph: the model already has a graph named {self.name!r}')
        model.graphs[self.name] = self
        self.input_node = Node(self, uid(), '_inputs', _IOOperation('_inputs'), _internal=True)
        self.output_node = Node(self, uid(), '_outputs', _IOOperation('_outputs'), _internal=True)
        self.hidden_nodes: List[Node] = []
        self.edges: List[Edge] = []

    @staticmethod
    def new(model: Model, name: Optional[str] = None, input_names: Optional[List[str]] = None,
            output_names: Optional[List[str]] = None) -> 'Graph':
        """Create an empty graph in ``model`` (the first one named ``'_model'`` is the root graph)."""
        graph = Graph(model, uid(), name, _internal=True)
        graph.input_names = list(input_names or [])
        graph.output_names = list(output_names or [])
        return graph

    @property
    def input_names(self) -> List[str]:
        return self.input_node.operation.io_names  # type: ignore[attr-defined]

    @input_names.setter
    def input_names(self, names: List[str]) -> None:
        self.input_node.operation.io_names = list(names)  # type: ignore[attr-defined]

    @property
    def output_names(self) -> List[str]:
        return self.output_node.operation.io_names  # type: ignore[attr-defined]

    @output_names.setter
    def output_names(self, names: List[str]) -> None:
        self.output_node.operation.io_names = list(names)  # type: ignore[attr-defined]

    @property
    def nodes(self) -> List['Node']:
        return [self.input_node, self.output_node] + self.hidden_nodes

    def add_node(self, name: str, operation_or_type: Union[Operation, str], parameters: Optional[Dict[str, Any]] = None,
                 label: Optional[str] = None) -> 'Node':
        """Add a hidden node; ``name`` must be unique in the graph."""
        if any(node.name == name for node in self.nodes):
            raise IllegalGraphError(f'Graph {self.name!r}: a node named {name!r} already exists')
        operation = operation_or_type if isinstance(operation_or_type, Operation) else Operation.new(operation_or_type, parameters)
        node = Node(self, uid(), name, operation, _internal=True)
        node.label = label
        self.hidden_nodes.append(node)
        return node

    def add_edge(self, head: Tuple['Node', Optional[int]], tail: Tuple['Node', Optional[int]]) -> 'Edge':
        """Connect output ``head[1]`` of ``head[0]`` to input ``tail[1]`` of ``tail[0]`` (slots may be ``None``)."""
        if head[0].graph is not self or tail[0].graph is not self:
            raise IllegalGraphError(f'Graph {self.name!r}: both ends of an edge must be nodes of this graph')
        edge = Edge(head, tail, _internal=True)
        self.edges.append(edge)
        return edge

    def get_node_by_id(self, node_id: int) -> Optional['Node']:
        return next((node for node in self.nodes if node.id == node_id), None)

    def get_node_by_name(self, name: str) -> Optional['Node']:
        return next((node for node in self.nodes if node.name == name), None)

    def get_nodes_by_type(self, operation_type: str) -> List['Node']:
        return [node for node in self.hidden_nodes if node.operation.type == operation_type]

    def get_nodes_by_label(self, label: str) -> List['Node']:
        return [node for node in self.hidden_nodes if node.label == label]

    def topo_sort(self) -> List['Node']:
        """Nodes in an order where every edge goes forward; raises IllegalGraphError on a cycle."""
        indegree = {node.id: 0 for node in self.nodes}
        for edge in self.edges:
            indegree[edge.tail.id] += 1
        ready = [node for node in self.nodes if indegree[node.id] == 0]
        order: List[Node] = []
        while ready:
            node = ready.pop(0)
            order.append(node)
            for edge in node.outgoing_edges:
                indegree[edge.tail.id] -= 1
                if indegree[edge.tail.id] == 0:
                    ready.append(edge.tail)
        if len(order) != len(self.nodes):
            raise IllegalGraphError(f'Graph {self.name!r} has a cycle')
        return order

    def fork(self) -> 'Graph':
        """Fork the model and return this graph's counterpart in the new model."""
        return self.model.fork().graphs[self.name]

    def _fork_to(self, model: Model, name: Optional[str] = None, graph_id: Optional[int] = None) -> 'Graph':
        new = Graph(model, self.id if graph_id is None else graph_id, name or self.name, _internal=True)
        new.input_node.id, new.output_node.id = self.input_node.id, self.output_node.id
        new.input_names, new.output_names = self.input_names, self.output_names
        mapping = {self.input_node.id: new.input_node, self.output_node.id: new.output_node}
        for node in self.hidden_nodes:
            copied = Node(new, node.id, node.name, node.operation, _internal=True)
            copied.label = node.label
            new.hidden_nodes.append(copied)
            mapping[node.id] = copied
        for edge in self.edges:
            new.edges.append(Edge((mapping[edge.head.id], edge.head_slot), (mapping[edge.tail.id], edge.tail_slot), _internal=True))
        return new

    def __repr__(self) -> str:
        return f'Graph(id={self.id}, name={self.name!r}, input_names={self.input_names}, output_names={self.output_names}, ' \
               f'num_hidden_nodes={len(self.hidden_nodes)}, num_edges={len(self.edges)})'


class Node:
    """An operation, or an opaque subgraph (a ``_cell`` operation), inside a graph. Create with ``Graph.add_node``."""

    def __init__(self, graph: Graph, node_id: int, name: str, operation: Operation, _internal: bool = False):
        _private('Node', _internal)
        self.graph = graph
        self.id = node_id
        self.name = name
        self.operation = operation
        self.label: Optional[str] = None

    @property
    def incoming_edges(self) -> List['Edge']:
        return [edge for edge in self.graph.edges if edge.tail is self]

    @property
    def outgoing_edges(self) -> List['Edge']:
        return [edge for edge in self.graph.edges if edge.head is self]

    @property
    def predecessors(self) -> List['Node']:
        return _unique(edge.head for edge in self.incoming_edges)

    @property
    def successors(self) -> List['Node']:
        return _unique(edge.tail for edge in self.outgoing_edges)

    @property
    def cell(self) -> Graph:
        """The referenced subgraph (read-only use); raises TypeError for a primitive op."""
        if not isinstance(self.operation, Cell):
            raise TypeError(f'Node {self.name!r}: operation {self.operation.type!r} is not a cell')
        return self.graph.model.graphs[self.operation.cell_name]

    def update_operation(self, type_or_operation: Union[str, Operation], parameters: Optional[Dict[str, Any]] = None) -> None:
        """Replace this node's operation (by a type name and parameters, or an Operation)."""
        if isinstance(type_or_operation, Operation):
            self.operation = type_or_operation
        else:
            self.operation = Operation.new(type_or_operation, parameters)

    def update_label(self, label: Optional[str]) -> None:
        self.label = label

    def specialize_cell(self) -> Graph:
        """Point this cell node to a private copy of its subgraph (so mutating it changes only this node)."""
        template = self.cell
        copied = template._fork_to(self.graph.model, name=f'{template.name}_{self.id}', graph_id=uid())
        self.operation = Cell(copied.name, self.operation.parameters, self.operation.attributes)
        return copied

    def remove(self) -> None:
        """Remove this hidden node; it must have no edges left."""
        if self.incoming_edges or self.outgoing_edges:
            raise IllegalGraphError(f'Node {self.name!r}: remove its edges before removing it')
        self.graph.hidden_nodes.remove(self)

    def __repr__(self) -> str:
        return f'Node(id={self.id}, name={self.name!r}, label={self.label!r}, operation={self.operation!r})'


def _unique(nodes: Iterable[Node]) -> List[Node]:
    seen: Dict[int, Node] = {}
    for node in nodes:
        seen.setdefault(node.id, node)
    return list(seen.values())


class Edge:
    """A data flow from output ``head_slot`` of ``head`` to input ``tail_slot`` of ``tail``.

    A slot is ``None`` when the node has a single output (head) or input (tail); ``tail_slot=-1`` means the
    order of the inputs does not matter.
    """

    def __init__(self, head: Tuple[Node, Optional[int]], tail: Tuple[Node, Optional[int]], _internal: bool = False):
        _private('Edge', _internal)
        self.head, self.head_slot = head
        self.tail, self.tail_slot = tail
        self.graph = self.head.graph

    def remove(self) -> None:
        self.graph.edges.remove(self)

    def __repr__(self) -> str:
        return f'Edge(head=({self.head.name!r}, {self.head_slot}), tail=({self.tail.name!r}, {self.tail_slot}))'
