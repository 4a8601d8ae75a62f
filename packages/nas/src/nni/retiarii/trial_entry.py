"""The command of every multi-trial NAS trial: ``python3 -m nni.retiarii.trial_entry <engine>``.

It reads the trial's parameters (``nni.get_next_parameter()``), rebuilds the model and calls
``evaluator._execute(model_factory)`` once; the evaluator reports the metrics.

* ``py`` (pure-python engine): the parameters carry the model space's class, its init arguments
  and the architecture dict; the factory re-creates the class under ``fixed_arch(sample)``.
* ``base`` (graph-based engine): the parameters carry the generated module (its ``forward``
  source and pickled submodules); the factory returns it.

Only what the evaluator needs is imported (no Lightning for a ``FunctionalEvaluator``).
"""
from __future__ import annotations

import base64
import json
import sys
from typing import Any, Callable, List, Optional

__all__ = ['main', 'model_factory']

ENGINES = ('py', 'base')


def model_factory(params: dict, engine: str) -> Callable[[], Any]:
    """A zero-argument callable building the trial's model from its parameters."""
    from . import serializer
    if engine == 'py':
        from .fixed import fixed_arch
        cls = serializer.load(json.dumps(params['model_space']))
        args, kwargs = serializer.load(json.dumps(params['init_args']))
        sample = params['sample']

        def build() -> Any:
            with fixed_arch(sample, verbose=False):
                return cls(*args, **kwargs)
        return build
    module = serializer._cloudpickle().loads(base64.b64decode(params['module']))
    return lambda: module


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    engine = argv[0] if argv else 'py'
    if engine not in ENGINES:
        print(f'nni.retiarii.trial_entry: unknown engine {engine!r}; allowed: {", ".join(ENGINES)}', file=sys.stderr)
        return 2
    import nni
    from . import serializer
    params = nni.get_next_parameter()
    if not isinstance(params, dict) or 'evaluator' not in params:
        print('nni.retiarii.trial_entry: no NAS trial parameters (run by a RetiariiExperiment only)', file=sys.stderr)
        return 2
    evaluator = serializer.load(json.dumps(params['evaluator']))
    evaluator._execute(model_factory(params, engine))
    return 0


if __name__ == '__main__':
    # without the module teardown, which takes 1-2 s once torch is loaded (per-trial overhead)
    from nni.runtime.process_exit import exit_now
    exit_now(main())
