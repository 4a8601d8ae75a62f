"""Network Morphism tuner (builtin name ``NetworkMorphism``), after Auto-Keras.

The first trial trains the initial CNN (:class:`~.nn.CnnGenerator`: ``default_model_len`` blocks
of ``default_model_width`` filters). Each later trial trains a child of an evaluated network: a
copy with morphs applied (deeper: insert ReLU-conv-batchnorm; wider: more filters or units;
skip: an add or concatenate connection from an earlier block). With results available, the
child is chosen by Bayesian optimisation (:mod:`.bayesian`: a GP over an edit distance between
networks, searched by simulated annealing from the best networks, acquisition ``mean -
beta * std`` of the loss); before any result (concurrent first trials) it is a random morph of
the initial network. Networks already sent are not sent again.

The trial receives the network as the docs' JSON representation (a JSON object, i.e. a dict in
Python; :func:`json_to_graph` accepts it or its JSON text) and builds a torch model with
``json_to_graph(params).produce_torch_model()``. Every network sent is also written to
``<path>/<model_id>.json``, and ``<path>/best_model.txt`` names the best one (``path``, default
``model_path``, is relative to the experiment's log directory when the tuner runs in an
experiment, as the docs say).

Decisions on the docs' gaps and contradictions:

* ``optimize_mode`` defaults to ``'maximize'`` (signature and user guide; the attribute text
  says ``minimize``).
* ``task`` accepts only ``'cv'`` (the only documented domain); ``algorithm_name`` only
  ``'Bayesian'``.
* The search space is not used (the architecture is the whole configuration); a valid
  non-empty space is accepted with a warning, a malformed one is rejected.
* ``import_data`` accepts records whose ``parameter`` is a graph JSON (what ``nnictl experiment
  export`` gives for this tuner); other records are skipped with a warning.
* The graph JSON carries no weights (``weighted: false``): trials train from scratch, so the
  morphs need not be function-preserving; new layers get PyTorch's default initialisation.
"""
from __future__ import annotations

import logging
import math
import os
import random
from typing import Any

from nni.tuner import Tuner
from nni.utils import ClassArgsValidator, OptimizeMode

from .._tuner_support import ALL_TYPES, check_search_space, loss_of, parse_optimize_mode
from .bayesian import BayesianOptimizer
from .graph import Graph, graph_to_json, json_to_graph
from .nn import CnnGenerator

__all__ = ["NetworkMorphismTuner", "NetworkMorphismClassArgsValidator"]

_logger = logging.getLogger(__name__)

# how many of the best evaluated networks the annealing starts from
_N_PARENTS = 3


class NetworkMorphismClassArgsValidator(ClassArgsValidator):
    def validate_class_args(self, **kwargs: Any) -> None:
        self.check(kwargs, optional={
            "optimize_mode": self.choices("optimize_mode", "maximize", "minimize"),
            "task": self.choices("task", "cv"),
            "input_width": self.range("input_width", int, 1, 99999),
            "input_channel": self.range("input_channel", int, 1, 99999),
            "n_output_node": self.range("n_output_node", int, 1, 999999),
            "algorithm_name": self.choices("algorithm_name", "Bayesian"),
            "path": str,
            "verbose": bool,
            "beta": self.range("beta", float, 0.0, None),
            "t_min": self.range("t_min", float, 1e-12, 0.99),
            "max_model_size": self.range("max_model_size", int, 1, None),
            "default_model_len": self.range("default_model_len", int, 1, 100),
            "default_model_width": self.range("default_model_width", int, 1, 100000),
            "seed": self.range("seed", int, 0, None),
        })


class NetworkMorphismTuner(Tuner):
    """Search CNN architectures by network morphism with Bayesian optimisation.

    Args:
        task: ``'cv'`` (the only domain).
        input_width: input image width (square images).
        input_channel: input image channels.
        n_output_node: number of classes.
        algorithm_name: ``'Bayesian'``.
        optimize_mode: ``'maximize'`` (default) or ``'minimize'``.
        path: folder for the networks' JSON files and ``best_model.txt``.
        verbose: log each generated network.
        beta: exploration weight of the acquisition.
        t_min: final temperature of the simulated annealing.
        max_model_size: largest number of weights of a generated network.
        default_model_len: conv blocks of the initial network.
        default_model_width: filters of the initial network's convs.
        seed: random seed (``None``: not reproducible).
    """

    class_args_validator = NetworkMorphismClassArgsValidator

    def __init__(self, task: str = "cv", input_width: int = 32, input_channel: int = 3, n_output_node: int = 10,
                 algorithm_name: str = "Bayesian", optimize_mode: str = "maximize", path: str = "model_path",
                 verbose: bool = True, beta: float = 2.576, t_min: float = 0.0001, max_model_size: int = 16777216,
                 default_model_len: int = 3, default_model_width: int = 64, seed: int | None = None):
        self.class_args_validator().validate_class_args(
            task=task, input_width=input_width, input_channel=input_channel, n_output_node=n_output_node,
            algorithm_name=algorithm_name, optimize_mode=optimize_mode.value if isinstance(optimize_mode, OptimizeMode) else optimize_mode,
            path=path, verbose=verbose, beta=float(beta), t_min=float(t_min), max_model_size=max_model_size,
            default_model_len=default_model_len, default_model_width=default_model_width)
        self.task = task
        self.n_classes = n_output_node
        self.input_shape = (input_width, input_width, input_channel)
        self.algorithm_name = algorithm_name
        self.optimize_mode = parse_optimize_mode(optimize_mode, "NetworkMorphism")
        self.verbose = verbose
        self.beta = beta
        self.t_min = t_min
        self.max_model_size = max_model_size
        self.default_model_len = default_model_len
        self.default_model_width = default_model_width
        log_dir = os.environ.get("NNI_LOG_DIRECTORY")
        self.path = path if os.path.isabs(path) or not log_dir else os.path.join(log_dir, path)
        self.rng = random.Random(seed)
        self.bo = BayesianOptimizer(self.rng, beta=beta, t_min=t_min, max_model_size=max_model_size)
        self.search_space: dict = {}
        self.history: list[dict] = []  # {"model_id", "graph", "loss", "metric_value"}
        self._pending: dict[Any, tuple[Graph, int, int | None]] = {}  # parameter_id -> (graph, model_id, father)
        self._seen: set[str] = set()
        self._model_count = 0
        self._initial = CnnGenerator(n_output_node, self.input_shape).generate(default_model_len, default_model_width)

    # ------------------------------------------------------------------ Tuner API
    def update_search_space(self, search_space: dict) -> None:
        """The search space is not used; it is checked for format only (see the module doc)."""
        check_search_space(search_space, "NetworkMorphism", ALL_TYPES, nested=True)
        if search_space:
            _logger.warning("NetworkMorphism: the search space (%s) is not used; trials receive a network graph",
                            ", ".join(map(str, search_space)))
        self.search_space = search_space

    def generate_parameters(self, parameter_id: Any, **kwargs: Any) -> dict:
        """The next network to train, as the docs' graph JSON (a dict)."""
        father, graph = self.generate()
        model_id = self._model_count
        self._model_count += 1
        self._seen.add(graph.signature())
        self._pending[parameter_id] = (graph, model_id, father)
        json_path = None
        try:
            os.makedirs(self.path, exist_ok=True)
            json_path = os.path.join(self.path, f"{model_id}.json")
        except OSError as err:  # saving is a convenience; the search goes on without it
            _logger.warning("NetworkMorphism: cannot write models to %s: %s", self.path, err)
        out = graph_to_json(graph, json_path)
        if self.verbose:
            _logger.info("NetworkMorphism: model %s (father %s), %d layers, %d weights",
                         model_id, father, len(graph.layer_list), graph.n_params())
        return out

    def generate(self) -> tuple[int | None, Graph]:
        """``(other_info, graph)`` of the next network (the initial one first); ``other_info``
        is the father's model id (``None`` for the initial network)."""
        if self._initial.signature() not in self._seen:
            return None, self._initial
        if self.history:
            ranked = sorted(self.history, key=lambda h: h["loss"])[:_N_PARENTS]
            found = self.bo.generate([(h["graph"], h["model_id"]) for h in ranked], self._seen)
            if found is not None:
                return found[1], found[0]
        base = min(self.history, key=lambda h: h["loss"]) if self.history else None
        graph, father = (base["graph"], base["model_id"]) if base else (self._initial, None)
        # before any result (or when annealing found nothing new): random morphs until unseen
        for _ in range(100):
            child = graph.random_morph(self.rng)
            for _ in range(self.rng.randrange(3)):
                child = child.random_morph(self.rng)
            if child.signature() not in self._seen and child.n_params() <= self.max_model_size:
                return father, child
        return father, child

    def receive_trial_result(self, parameter_id: Any, parameters: Any, value: Any, **kwargs: Any) -> None:
        entry = self._pending.pop(parameter_id, None)
        if entry is None:  # a customized or resumed trial: read the network from its parameters
            try:
                entry = (json_to_graph(parameters), self._model_count, None)
            except (ValueError, TypeError, KeyError, IndexError) as err:
                _logger.warning("NetworkMorphism: ignoring result of %s: parameters are not a network graph: %s",
                                parameter_id, err)
                return
            self._model_count += 1
            self._seen.add(entry[0].signature())
        graph, model_id, father = entry
        self.update(father, graph, value, model_id)

    def trial_end(self, parameter_id: Any, success: bool, **kwargs: Any) -> None:
        self._pending.pop(parameter_id, None)

    def import_data(self, data: list[dict]) -> None:
        """Add finished trials whose ``parameter`` is a network graph JSON to the history."""
        for record in data:
            try:
                graph = json_to_graph(record["parameter"])
                value = record["value"]
            except (KeyError, TypeError, ValueError, IndexError) as err:
                _logger.warning("NetworkMorphism: skipping imported record (not a network graph): %s", err)
                continue
            self._seen.add(graph.signature())
            self.update(None, graph, value, self._model_count)
            self._model_count += 1

    # ------------------------------------------------------------------ history
    def update(self, other_info: Any, graph: Graph, metric_value: Any, model_id: int) -> None:
        """Record ``graph``'s result (``other_info``: its father's model id) and refit the GP."""
        loss = loss_of(metric_value, self.optimize_mode)
        if not math.isfinite(loss):
            return
        self.add_model(metric_value, model_id, graph)
        self.bo.fit([h["graph"] for h in self.history], [h["loss"] for h in self.history])

    def add_model(self, metric_value: Any, model_id: int, graph: Graph | None = None) -> dict:
        """Add a model to the history and refresh ``best_model.txt``."""
        from nni.utils import extract_scalar_reward

        model = {"model_id": model_id, "graph": graph, "metric_value": extract_scalar_reward(metric_value),
                 "loss": loss_of(metric_value, self.optimize_mode)}
        self.history.append(model)
        try:
            if os.path.isdir(self.path):
                with open(os.path.join(self.path, "best_model.txt"), "w", encoding="utf-8") as f:
                    f.write(f"best model: {self.get_best_model_id()}\n")
        except OSError as err:
            _logger.warning("NetworkMorphism: cannot write best_model.txt: %s", err)
        return model

    def get_best_model_id(self) -> int | None:
        """Model id of the best result so far (``None`` before any)."""
        return min(self.history, key=lambda h: h["loss"])["model_id"] if self.history else None

    def get_metric_value_by_id(self, model_id: int) -> float | None:
        for h in self.history:
            if h["model_id"] == model_id:
                return h["metric_value"]
        return None

    def load_model_by_id(self, model_id: int) -> Graph | None:
        """The graph of model ``model_id`` (from the history, else from ``<path>/<id>.json``)."""
        for h in self.history:
            if h["model_id"] == model_id:
                return h["graph"]
        file = os.path.join(self.path, f"{model_id}.json")
        if os.path.exists(file):
            with open(file, encoding="utf-8") as f:
                return json_to_graph(f.read())
        return None

    def load_best_model(self) -> Graph | None:
        best = self.get_best_model_id()
        return None if best is None else self.load_model_by_id(best)
