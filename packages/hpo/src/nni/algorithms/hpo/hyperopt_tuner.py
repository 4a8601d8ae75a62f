"""Tuners backed by the `hyperopt <https://github.com/hyperopt/hyperopt>`_ library.

:class:`HyperoptTuner` with ``algorithm_name`` ``'tpe'``, ``'random_search'`` or ``'anneal'``.
The builtin ``Anneal`` is ``HyperoptTuner(algorithm_name='anneal')`` (class
:class:`AnnealTuner`). The builtin ``TPE`` is the native
:class:`nni.algorithms.hpo.tpe_tuner.TpeTuner` and ``Random`` is
:class:`nni.algorithms.hpo.random_tuner.RandomTuner`; the hyperopt versions of both stay
available here under their v2.5 class name.

Decisions on the docs' contradictions:

* ``optimize_mode``: the class signature in the API reference says ``'minimize'`` while every
  user guide says the default is ``maximize``. :class:`HyperoptTuner` keeps the documented
  signature (``'minimize'``) for code that constructs it directly; the builtin ``Anneal``
  (:class:`AnnealTuner`) defaults to ``maximize`` as the user guide says.
* ``constant_liar_type`` ``min``/``max``/``mean`` is taken over the reported metric values
  (see :mod:`nni.algorithms.hpo.tpe_tuner`).
* Values are post-processed to the search-space spec: ``q`` types are clipped into
  ``[low, high]`` (hyperopt's ``quniform`` does not clip), ``randint`` gives Python ``int``.
"""
from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np

from nni.common.hpo_utils import deformat_parameters, format_parameters, format_search_space, key_to_path
from nni.tuner import Tuner
from nni.utils import ClassArgsValidator, NodeType, extract_scalar_reward

from ._tuner_support import ALL_TYPES, check_liar_type, check_search_space, liar_loss, loss_of, parse_optimize_mode

__all__ = ["HyperoptTuner", "AnnealTuner", "HyperoptClassArgsValidator", "AnnealClassArgsValidator", "json2space", "json2parameter", "json2vals", "NodeType"]

_logger = logging.getLogger(__name__)

ALGORITHMS = ("tpe", "random_search", "anneal")


def _label(key: tuple, name: str = NodeType.ROOT) -> str:
    """hyperopt label of a parameter: its path (``lr``, ``optimizer[1].lr``), prefixed by
    ``name + '/'`` when a caller passes its own ``name`` (so two spaces can share one domain)."""
    path = key_to_path(key)
    return path if name == NodeType.ROOT else f"{name}/{path}"


def json2space(in_x: dict, name: str = NodeType.ROOT, _prefix: tuple = ()) -> dict:
    """Turn an NNI search space into a hyperopt space (a dict of ``hp.*`` expressions).

    Labels are the parameter paths (``lr``, ``optimizer[1].lr``); a nested choice option (a dict
    with ``_name``) becomes a dict keeping its ``_name``; any other option, a dict without
    ``_name`` included, is a plain value. A one-point range (low == high) is that constant
    (hyperopt's models cannot fit a zero-width range).

    Example::

        space = json2space({'lr': {'_type': 'loguniform', '_value': [1e-4, 1e-1]}})
        vals = hyperopt.pyll.stochastic.sample(space)   # {'lr': 0.0031...}
    """
    from hyperopt import hp

    from nni.common.hpo_utils import format_search_space, is_nested_option

    out: dict[str, Any] = {}
    for key_name, spec in in_x.items():
        if key_name == NodeType.NAME and _prefix:
            out[key_name] = spec
            continue
        key = _prefix + (key_name,)
        label = _label(key, name)
        type_, value = spec[NodeType.TYPE], spec[NodeType.VALUE]
        formatted = format_search_space({key_name: spec})[(key_name,)]
        if formatted.is_constant() and type_ != "choice":
            out[key_name] = formatted.low if type_ == "randint" else float(value[0])
        elif type_ == "choice":
            options = [json2space(opt, name, key + (i,)) if is_nested_option(opt) else opt for i, opt in enumerate(value)]
            out[key_name] = hp.choice(label, options)
        elif type_ == "randint":
            out[key_name] = hp.randint(label, int(value[0]), int(value[1]))
        elif type_ == "uniform":
            out[key_name] = hp.uniform(label, value[0], value[1])
        elif type_ == "quniform":
            out[key_name] = hp.quniform(label, value[0], value[1], value[2])
        elif type_ == "loguniform":
            out[key_name] = hp.loguniform(label, math.log(value[0]), math.log(value[1]))
        elif type_ == "qloguniform":
            out[key_name] = hp.qloguniform(label, math.log(value[0]), math.log(value[1]), value[2])
        elif type_ == "normal":
            out[key_name] = hp.normal(label, value[0], value[1])
        elif type_ == "qnormal":
            out[key_name] = hp.qnormal(label, value[0], value[1], value[2])
        elif type_ == "lognormal":
            out[key_name] = hp.lognormal(label, value[0], value[1])
        elif type_ == "qlognormal":
            out[key_name] = hp.qlognormal(label, value[0], value[1], value[2])
        else:
            raise ValueError(f"search space {key_to_path(key)!r}: type {type_!r} is not supported by HyperoptTuner")
    return out


def json2parameter(in_x: dict, parameter: dict, name: str = NodeType.ROOT) -> dict:
    """Turn hyperopt's values back into the parameters a trial receives.

    Args:
        in_x: the NNI search space given to :func:`json2space`.
        parameter: hyperopt's ``vals`` (``{label: value}`` or ``{label: [value]}`` as in
            ``trials.trials[i]['misc']['vals']``); choice values are option indices, as hyperopt
            gives them.
        name: the ``name`` given to :func:`json2space`.

    Returns:
        The parameters, following NNI's search-space spec (``q`` types clipped into
        ``[low, high]``, ``randint`` as ``int``, a chosen nested option as
        ``{'_name': ..., <its parameters>}``, a plain option unchanged).
    """
    formatted_space = format_search_space(in_x)
    formatted: dict = {}
    for key, spec in formatted_space.items():
        if spec.is_constant() and spec.type != "choice":
            formatted[key] = 0 if spec.type == "randint" else spec.low
            continue
        label = _label(key, name)
        if label not in parameter:
            continue
        v = parameter[label]
        if isinstance(v, (list, tuple)):
            if not v:
                continue
            v = v[0]
        v = float(v)
        if spec.type == "randint":
            v = v - spec.low
        elif spec.log_distributed:
            v = math.log(max(v, (spec.q or 1e-300) / 4))
        formatted[key] = v
    return deformat_parameters(formatted, formatted_space)


def json2vals(in_x: dict, vals: dict, out_y: dict, name: str = NodeType.ROOT) -> None:
    """Fill ``out_y`` with hyperopt's ``{label: value}`` for the NNI parameters ``vals``.

    The inverse of :func:`json2parameter`, used to hand finished trials to hyperopt
    (``import_data``): choice values become option indices, only the labels of active
    parameters are written. Raises ``ValueError`` naming the parameter when ``vals`` does not
    fit the search space.
    """
    formatted_space = format_search_space(in_x)
    for key, v in format_parameters(vals, formatted_space).items():
        spec = formatted_space[key]
        if spec.is_constant() and spec.type != "choice":
            continue  # a constant has no label in the hyperopt space
        if spec.type == "randint":
            v = spec.low + int(v)
        elif spec.type == "choice":
            v = int(v)
        elif spec.log_distributed:
            v = math.exp(v)
        out_y[_label(key, name)] = v


def _parameter2vals(search_space: dict, parameters: dict) -> dict:
    out: dict = {}
    json2vals(search_space, parameters, out)
    return out


class HyperoptClassArgsValidator(ClassArgsValidator):
    def validate_class_args(self, **kwargs: Any) -> None:
        self.check(kwargs, optional={
            "algorithm_name": self.choices("algorithm_name", *ALGORITHMS),
            "optimize_mode": self.choices("optimize_mode", "maximize", "minimize"),
            "parallel_optimize": bool,
            "constant_liar_type": self.choices("constant_liar_type", "min", "max", "mean"),
            "seed": self.range("seed", int, 0, None),
        })


class HyperoptTuner(Tuner):
    """A tuner driven by one of hyperopt's suggestion algorithms.

    Args:
        algorithm_name: ``'tpe'``, ``'random_search'`` or ``'anneal'``.
        optimize_mode: ``'minimize'`` (the API default) or ``'maximize'``.
        parallel_optimize: Constant Liar for pending trials.
        constant_liar_type: ``'min'``, ``'max'`` or ``'mean'``.
        seed: random seed (``None``: not reproducible).
    """

    class_args_validator = HyperoptClassArgsValidator
    supported_types = ALL_TYPES

    def __init__(self, algorithm_name: str = "tpe", optimize_mode: str = "minimize", parallel_optimize: bool = False,
                 constant_liar_type: str = "min", seed: int | None = None):
        if algorithm_name not in ALGORITHMS:
            raise ValueError(f"HyperoptTuner: classArgs.algorithm_name must be one of {', '.join(ALGORITHMS)}, "
                             f"got {algorithm_name!r}")
        self.algorithm_name = algorithm_name
        self.optimize_mode = parse_optimize_mode(optimize_mode, "HyperoptTuner")
        self.parallel_optimize = bool(parallel_optimize)
        self.constant_liar_type = check_liar_type(constant_liar_type, "HyperoptTuner")
        self.rng = np.random.default_rng(seed)
        self.search_space: dict | None = None
        self._formatted: dict = {}
        self._labels: list[str] = []
        self.trials = None
        self.domain = None
        self._tids: dict[Any, int] = {}  # parameter_id -> hyperopt tid
        self._metrics: list[float] = []

    def _algorithm(self):
        from hyperopt import anneal, rand, tpe

        return {"tpe": tpe.suggest, "random_search": rand.suggest, "anneal": anneal.suggest}[self.algorithm_name]

    def update_search_space(self, search_space: dict) -> None:
        import hyperopt

        check_search_space(search_space, "HyperoptTuner", self.supported_types, nested=True)
        old_data = self._completed_data() if self.trials is not None else []
        self.search_space = search_space
        self._formatted = format_search_space(search_space)
        self._labels = [_label(k) for k, spec in self._formatted.items()
                        if not (spec.is_constant() and spec.type != "choice")]
        self.domain = hyperopt.Domain(lambda _: 0, json2space(search_space), pass_expr_memo_ctrl=None)
        self.trials = hyperopt.Trials()
        self._tids = {}
        self._metrics = []
        if old_data:
            self.import_data(old_data, _quiet=True)

    def _completed_data(self) -> list[dict]:
        out = []
        for doc in self.trials.trials:
            if doc["result"].get("status") == "ok" and "metric" in doc["result"]:
                vals = {k: v for k, v in doc["misc"]["vals"].items()}
                out.append({"parameter": json2parameter(self.search_space, vals), "value": doc["result"]["metric"]})
        return out

    # ------------------------------------------------------------------ generation
    def get_suggestion(self, random_search: bool = False) -> tuple[int, dict]:
        """Ask hyperopt for one configuration; returns ``(tid, parameters)``."""
        import hyperopt
        from hyperopt import rand

        trials = self.trials
        tid = trials.new_trial_ids(1)
        lied = []
        if self.parallel_optimize:
            lie = liar_loss(self._metrics, self.constant_liar_type, self.optimize_mode)
            for doc in trials._dynamic_trials:
                if doc["state"] == hyperopt.JOB_STATE_NEW:
                    doc["result"] = {"loss": lie, "status": hyperopt.STATUS_OK}
                    doc["state"] = hyperopt.JOB_STATE_DONE
                    lied.append(doc)
        trials.refresh()
        algorithm = rand.suggest if random_search else self._algorithm()
        seed = int(self.rng.integers(2**31 - 1))
        # hyperopt's q-log types can round to 0 and then take its log inside anneal
        with np.errstate(divide="ignore", invalid="ignore"):
            docs = algorithm(tid, self.domain, trials, seed)
        for doc in lied:
            doc["result"] = {"status": hyperopt.STATUS_NEW}
            doc["state"] = hyperopt.JOB_STATE_NEW
        trials.insert_trial_docs(docs)
        trials.refresh()
        vals = docs[0]["misc"]["vals"]
        return tid[0], json2parameter(self.search_space, vals)

    def generate_parameters(self, parameter_id: Any, **kwargs: Any) -> dict:
        if self.trials is None:
            raise RuntimeError("HyperoptTuner: update_search_space() must be called before generate_parameters()")
        tid, params = self.get_suggestion()
        self._tids[parameter_id] = tid
        return params

    def _doc(self, tid: int) -> dict | None:
        for doc in self.trials._dynamic_trials:
            if doc["tid"] == tid:
                return doc
        return None

    def receive_trial_result(self, parameter_id: Any, parameters: Any, value: Any, **kwargs: Any) -> None:
        import hyperopt

        if self.trials is None:
            return
        tid = self._tids.pop(parameter_id, None)
        doc = self._doc(tid) if tid is not None else None
        if doc is None:  # not generated here (customized trial): add it as imported data
            self.import_data([{"parameter": parameters, "value": value}], _quiet=True)
            return
        metric = extract_scalar_reward(value)
        doc["result"] = {"loss": loss_of(value, self.optimize_mode), "status": hyperopt.STATUS_OK, "metric": metric}
        doc["state"] = hyperopt.JOB_STATE_DONE
        self._metrics.append(metric)
        self.trials.refresh()

    def trial_end(self, parameter_id: Any, success: bool, **kwargs: Any) -> None:
        import hyperopt

        tid = self._tids.pop(parameter_id, None)
        if tid is None or self.trials is None:
            return
        doc = self._doc(tid)
        if doc is not None and doc["state"] == hyperopt.JOB_STATE_NEW:
            doc["result"] = {"status": hyperopt.STATUS_FAIL}
            doc["state"] = hyperopt.JOB_STATE_ERROR
            self.trials.refresh()

    def miscs_update_idxs_vals(self, miscs: list, idxs: dict, vals: dict, assert_all_vals_used: bool = True,
                               idxs_map: dict | None = None) -> None:
        """Unpack the idxs-vals format into the list of dictionaries that is misc (hyperopt's
        layout: ``misc['idxs'][label]`` / ``misc['vals'][label]`` lists per trial)."""
        if idxs_map is None:
            idxs_map = {}
        misc_by_id = {m["tid"]: m for m in miscs}
        for m in miscs:
            m["idxs"] = {key: [] for key in idxs}
            m["vals"] = {key: [] for key in idxs}
        for key in idxs:
            assert len(idxs[key]) == len(vals[key])
            for tid, val in zip(idxs[key], vals[key]):
                tid = idxs_map.get(tid, tid)
                if assert_all_vals_used or tid in misc_by_id:
                    misc_by_id[tid]["idxs"][key] = [tid]
                    misc_by_id[tid]["vals"][key] = [val]

    def import_data(self, data: list[dict], _quiet: bool = False) -> None:
        import hyperopt

        if self.trials is None:
            raise RuntimeError("HyperoptTuner: update_search_space() must be called before import_data()")
        for record in data:
            try:
                vals = _parameter2vals(self.search_space, record["parameter"])
                metric = extract_scalar_reward(record["value"])
                loss = loss_of(record["value"], self.optimize_mode)
            except (KeyError, TypeError, ValueError) as err:
                _logger.warning("HyperoptTuner: skipping imported record %r: %s", record, err)
                continue
            tid = self.trials.new_trial_ids(1)[0]
            misc = {"tid": tid, "cmd": self.domain.cmd, "workdir": self.domain.workdir}
            self.miscs_update_idxs_vals([misc], {k: [tid] for k in vals}, {k: [v] for k, v in vals.items()})
            for label in self._labels:
                misc["idxs"].setdefault(label, [])
                misc["vals"].setdefault(label, [])
            result = {"loss": loss, "status": hyperopt.STATUS_OK, "metric": metric}
            docs = self.trials.new_trial_docs([tid], [None], [result], [misc])
            for doc in docs:
                doc["state"] = hyperopt.JOB_STATE_DONE
            self.trials.insert_trial_docs(docs)
            self._metrics.append(metric)
        self.trials.refresh()


class AnnealClassArgsValidator(ClassArgsValidator):
    def validate_class_args(self, **kwargs: Any) -> None:
        self.check(kwargs, optional={
            "optimize_mode": self.choices("optimize_mode", "maximize", "minimize"),
            "seed": self.range("seed", int, 0, None),
        })


class AnnealTuner(HyperoptTuner):
    """Builtin ``Anneal``: hyperopt's annealing (starts like random search, then samples closer
    and closer to the best configurations; the annealing rate is not adaptive).

    Args:
        optimize_mode: ``'maximize'`` (default, as the user guide says) or ``'minimize'``.
        seed: random seed.
    """

    class_args_validator = AnnealClassArgsValidator

    def __init__(self, optimize_mode: str = "maximize", seed: int | None = None):
        super().__init__(algorithm_name="anneal", optimize_mode=optimize_mode, seed=seed)
