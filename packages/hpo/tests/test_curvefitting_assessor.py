"""Curve Fitting assessor: the 12 curve models, the MCMC ensemble prediction, the assessing rule."""
from __future__ import annotations

import numpy as np
import pytest

from nni.assessor import AssessResult
from nni.utils import check_class_args

from nni.algorithms.hpo.curvefitting_assessor import CurvefittingAssessor, CurvefittingClassArgsValidator
from nni.algorithms.hpo.curvefitting_assessor.curvefunctions import CURVE_MODEL_NAMES, CURVE_MODELS
from nni.algorithms.hpo.curvefitting_assessor.modelfactory import MIN_POINTS, CurveModelEnsemble


def _noisy(curve, n, sigma=0.005, seed=0):
    x = np.arange(1, n + 1, dtype=float)
    return (curve(x) + np.random.default_rng(seed).normal(0, sigma, n)).tolist()


def pow3_curve(x):
    return 0.9 - 0.6 * x**-0.7


def vap_curve(x):
    return np.exp(-0.1 - 0.8 / x + 0.01 * np.log(x))


def test_the_twelve_models_of_the_reference():
    assert CURVE_MODEL_NAMES == ("vap", "pow3", "linear", "logx_linear", "dr_hill_zero_background", "log_power",
                                 "pow4", "mmf", "exp4", "ilog2", "weibull", "janoschek")
    x = np.arange(1, 21, dtype=float)
    for model in CURVE_MODELS:
        y = model(x, model.init)
        assert y.shape == x.shape and np.all(np.isfinite(y)), model.name
        assert model.n_params == len(model.param_names)


@pytest.mark.parametrize("curve,n", [(pow3_curve, 10), (vap_curve, 10), (pow3_curve, 15)])
def test_predicts_a_known_saturating_curve_at_epoch_num(curve, n):
    truth = float(curve(np.array([20.0]))[0])
    prediction = CurveModelEnsemble(target_pos=20).predict(_noisy(curve, n))
    assert prediction == pytest.approx(truth, abs=0.03)


def test_prediction_is_scale_free_and_reproducible():
    history = [100 * v for v in _noisy(pow3_curve, 10)]
    model = CurveModelEnsemble(target_pos=20)
    first = model.predict(history)
    assert first == pytest.approx(100 * float(pow3_curve(np.array([20.0]))[0]), abs=3)
    assert model.predict(history) == first


def test_least_squares_fits_recover_their_own_family():
    x = np.arange(1, 13, dtype=float)
    model = CurveModelEnsemble(target_pos=30)
    y = 0.9 - 0.6 * x**-0.7
    fits = {fit.model.name: fit for fit in model.fit_theta(y)}
    assert fits["pow3"].rmse < 1e-4
    assert fits["pow3"].target_value == pytest.approx(0.9 - 0.6 * 30**-0.7, abs=1e-3)


def test_mcmc_weights_prefer_the_curves_that_fit():
    x = np.arange(1, 13, dtype=float)
    y = 0.9 - 0.6 * x**-0.7
    model = CurveModelEnsemble(target_pos=30)
    fits = model.fit_theta(y)
    weights, sigmas = model.mcmc_sampling(fits, y)
    assert weights.shape == (model.n_chains * (model.n_steps - model.burn_in), len(fits))
    assert np.allclose(weights.sum(axis=1), 1) and np.all(weights >= 0)
    assert np.all(sigmas > 0)
    names = [fit.model.name for fit in fits]
    assert weights.mean(axis=0)[names.index("pow3")] > weights.mean(axis=0)[names.index("linear")]


def test_too_few_points_give_no_prediction():
    model = CurveModelEnsemble(target_pos=20)
    assert model.predict([0.5] * (MIN_POINTS - 1)) is None
    assert model.predict([0.1, float("nan"), 0.3, 0.4]) is None


def _assessor_with_best(best=0.9, **kwargs):
    assessor = CurvefittingAssessor(**{"epoch_num": 20, **kwargs})
    history = _noisy(lambda x: best - 0.6 * x**-0.7, 19, sigma=0) + [best]
    assessor.assess_trial("done", history)
    assessor.trial_end("done", True)
    assert assessor.completed_best_performance == best
    return assessor


def test_stops_a_curve_predicted_below_threshold_times_best_and_keeps_a_good_one():
    assessor = _assessor_with_best(0.9)
    bad = _noisy(lambda x: 0.5 - 0.3 * x**-0.7, 8)  # heads to ~0.47 at epoch 20: far below 0.855
    good = _noisy(lambda x: 0.98 - 0.5 * x**-0.7, 8)  # heads to ~0.92 > 0.95 * 0.9 = 0.855
    assert assessor.assess_trial("bad", bad) is AssessResult.Bad
    assert assessor.assess_trial("good", good) is AssessResult.Good


def test_good_with_too_few_points_before_start_step_off_gap_and_without_history():
    bad = _noisy(lambda x: 0.5 - 0.3 * x**-0.7, 12)
    fresh = CurvefittingAssessor(epoch_num=20, start_step=6)
    assert fresh.assess_trial("t", bad[:8]) is AssessResult.Good  # no completed trial yet

    assessor = _assessor_with_best(0.9, start_step=0)
    assert assessor.assess_trial("t", bad[:1]) is AssessResult.Good  # too few points to fit
    assert assessor.assess_trial("t", bad[:2]) is AssessResult.Good

    assessor = _assessor_with_best(0.9, start_step=6, gap=2)
    assert assessor.assess_trial("t", bad[:5]) is AssessResult.Good  # before start_step
    assert assessor.assess_trial("t", bad[:6]) is AssessResult.Bad
    assert assessor.assess_trial("t", bad[:7]) is AssessResult.Good  # between judgements
    assert assessor.assess_trial("t", bad[:8]) is AssessResult.Bad


def test_best_final_performance_comes_from_successful_trials_only():
    assessor = CurvefittingAssessor(epoch_num=10, start_step=3)
    assessor.assess_trial("failed", [0.9, 0.95, 0.99])
    assessor.trial_end("failed", False)
    assert assessor.completed_best_performance is None
    assessor.assess_trial("ok", [{"default": 0.3}, {"default": 0.5}, {"default": 0.6}])
    assessor.trial_end("ok", True)
    assert assessor.completed_best_performance == 0.6


def test_past_epoch_num_the_observed_value_is_used():
    assessor = _assessor_with_best(0.9, epoch_num=5, start_step=3)
    assert assessor.assess_trial("t", [0.1, 0.2, 0.3, 0.4, 0.5, 0.9]) is AssessResult.Bad  # value at epoch 5: 0.5
    assert assessor.assess_trial("u", [0.1, 0.2, 0.3, 0.4, 0.89, 0.1]) is AssessResult.Good


def test_class_args_validator_requires_epoch_num():
    assert CurvefittingAssessor.class_args_validator is CurvefittingClassArgsValidator
    check_class_args(CurvefittingClassArgsValidator, {"epoch_num": 20, "start_step": 6, "threshold": 0.95, "gap": 1})
    check_class_args(CurvefittingClassArgsValidator, {"epoch_num": 20, "threshold": 1})
    for args, key in [({}, "epoch_num"), ({"epoch_num": 0}, "epoch_num"), ({"epoch_num": 20, "gap": 0}, "gap"),
                      ({"epoch_num": 20, "threshold": -0.1}, "threshold"), ({"epoch_num": 20, "start_step": "6"}, "start_step"),
                      ({"epoch_num": 20, "optimize_mode": "maximize"}, "optimize_mode")]:
        with pytest.raises(ValueError, match=rf"assessor\.classArgs\.{key}"):
            check_class_args(CurvefittingClassArgsValidator, args, "assessor.classArgs")
    with pytest.raises(ValueError, match="gap"):
        CurvefittingAssessor(gap=0)


def test_registered_as_builtin_assessor():
    from nni.runtime import registry

    assert registry.load_class("assessor", "Curvefitting") is CurvefittingAssessor


from nni.testing import AssessorContract  # noqa: E402


class TestCurvefittingContract(AssessorContract):
    kills_clearly_bad_trials = True
    completed_trials = 2  # each assessment fits 12 curves: keep the suite fast
    history_length = 12

    def make_assessor(self):
        return CurvefittingAssessor(epoch_num=20, start_step=6, threshold=0.95, gap=1)
