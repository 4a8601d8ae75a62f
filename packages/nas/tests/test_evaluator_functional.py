"""FunctionalEvaluator and the Evaluator base: the trial-side contract, metrics through the trial API."""
import pytest

import nni
import nni.runtime.platform.test as test_platform
from nni.retiarii.evaluator import Evaluator, FunctionalEvaluator
from nni.retiarii.serializer import dump, get_trace, is_traceable, load


@pytest.fixture
def metrics(monkeypatch):
    """Reported metrics, kept in memory by the unittest trial platform."""
    monkeypatch.setenv("NNI_PLATFORM", "unittest")
    test_platform.init_params({})

    def read(kind):
        return [record["value"] for record in test_platform.get_metrics() if record["type"] == kind]
    return read


class Doubler:
    def __init__(self, base=1):
        self.base = base

    def __call__(self, x):
        return 2 * x + self.base


def fit(model_cls, values, scale=1):
    model = model_cls()
    for step, value in enumerate(values):
        nni.report_intermediate_result(model(value) * scale)
    nni.report_final_result(sum(model(v) for v in values) * scale)
    return "done"


def test_calls_function_with_model_and_arguments(metrics):
    evaluator = FunctionalEvaluator(fit, values=[1, 2], scale=10)
    assert evaluator.function is fit and evaluator.arguments == {"values": [1, 2], "scale": 10}
    assert evaluator.evaluate(Doubler) == "done"
    assert metrics("PERIODICAL") == [30, 50] and metrics("FINAL") == [80]


def test_model_instance_is_passed_as_is(metrics):
    seen = []
    FunctionalEvaluator(lambda model, tag: seen.append((model, tag)), tag="x")._execute(model := Doubler(3))
    assert seen == [(model, "x")]


def test_is_traceable_and_round_trips(metrics):
    evaluator = FunctionalEvaluator(fit, values=(4,))
    assert is_traceable(evaluator) and get_trace(evaluator) == (FunctionalEvaluator, (fit,), {"values": (4,)})
    again = load(dump(evaluator))
    assert type(again) is FunctionalEvaluator and again.function is fit and again.arguments == {"values": (4,)}
    again._execute(lambda: Doubler(base=0))
    assert metrics("FINAL") == [8]


def test_rejects_a_function_that_is_not_callable():
    with pytest.raises(TypeError, match=r"^FunctionalEvaluator: function must be callable, got str$"):
        FunctionalEvaluator("train.fit")


def test_custom_evaluator_subclass_is_traceable_and_must_define_execute(metrics):
    class Constant(Evaluator):
        def __init__(self, value):
            self.value = value

        def _execute(self, model_cls_or_instance):
            nni.report_final_result(self.value)

    evaluator = Constant(0.5)
    assert get_trace(evaluator) == (Constant, (0.5,), {})
    load(dump(evaluator)).evaluate(None)
    assert metrics("FINAL") == [0.5]

    class Incomplete(Evaluator):
        pass

    with pytest.raises(TypeError, match="abstract"):
        Incomplete()
