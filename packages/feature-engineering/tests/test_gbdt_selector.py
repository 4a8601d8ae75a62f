"""GBDTSelector: LightGBM importances, the docs' fit/get_selected_features calls, scikit-learn."""
from __future__ import annotations

import sys

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from nni.algorithms.feature_engineering.gbdt_selector import GBDTSelector

INFORMATIVE = [2, 7, 13]


def planted(n=500, d=25, seed=0, classification=True):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    signal = 2 * X[:, 2] - 1.5 * X[:, 7] + np.abs(X[:, 13]) * 1.5 + 0.3 * rng.standard_normal(n)
    return X, ((signal > np.median(signal)).astype(int) if classification else signal)


def test_docs_call_recovers_planted_features():
    X, y = planted()
    selector = GBDTSelector()
    selector.fit(X, y, {"objective": "binary", "num_leaves": 7, "learning_rate": 0.1}, 0.2, 10, "gain", 100)
    assert sorted(selector.get_selected_features(3)) == INFORMATIVE
    assert selector.get_selected_features(1) == [2]
    assert selector.feature_importances_.shape == (25,)


def test_split_importance_counts_uses_and_regression_is_inferred():
    X, y = planted(classification=False)
    selector = GBDTSelector(importance_type="split", num_boost_round=50, early_stopping_rounds=None, topk=3)
    selector.fit(X, y)
    assert sorted(selector.get_selected_features()) == INFORMATIVE
    assert selector.booster_.params["objective"] == "regression"
    importances = selector.feature_importances_
    assert np.all(importances == np.round(importances))  # split counts are whole numbers


def test_multiclass_string_labels_and_sparse_input():
    X, _ = planted()
    y = np.array(["low", "mid", "high"])[np.digitize(X[:, 7], [-0.5, 0.5])]
    selector = GBDTSelector(topk=1, num_boost_round=30).fit(sp.csr_matrix(X), y)
    assert selector.get_selected_features() == [7]
    assert selector.booster_.params["objective"] == "multiclass" and list(selector.classes_) == ["high", "low", "mid"]
    assert selector.transform(sp.csr_matrix(X)).shape == (500, 1)


def test_pipeline_clone_and_default_topk_keeps_used_features():
    X, y = planted()
    pipeline = make_pipeline(GBDTSelector(topk=3, num_boost_round=50), LogisticRegression()).fit(X, y)
    assert sorted(pipeline[0].get_support(indices=True)) == INFORMATIVE
    assert pipeline.score(X, y) > 0.8
    twin = clone(pipeline[0])
    assert twin.get_params()["topk"] == 3 and not hasattr(twin, "booster_")
    used = GBDTSelector(num_boost_round=20).fit(X, y)
    assert set(used.get_selected_features()) == set(np.flatnonzero(used.feature_importances_ > 0))


def test_without_eval_set_no_early_stopping():
    X, y = planted()
    selector = GBDTSelector(eval_ratio=0, num_boost_round=15).fit(X, y)
    assert selector.booster_.current_iteration() == 15


@pytest.mark.parametrize("kwargs,needle", [
    (dict(eval_ratio=1.0), "eval_ratio=1.0"), (dict(eval_ratio=-0.1), "eval_ratio=-0.1"),
    (dict(importance_type="cover"), "importance_type='cover'"), (dict(num_boost_round=0), "num_boost_round=0"),
    (dict(early_stopping_rounds=-1), "early_stopping_rounds=-1"), (dict(topk=0), "topk=0"),
    (dict(lgb_params=[1]), "lgb_params=[1]"),
])
def test_bad_arguments_get_one_line_errors(kwargs, needle):
    with pytest.raises(ValueError) as info:
        GBDTSelector(**kwargs)
    assert needle in str(info.value) and "allowed" in str(info.value) and "\n" not in str(info.value)


def test_bad_fit_calls():
    X, y = planted(n=60)
    X = X[:, :5]
    with pytest.raises(ValueError, match="importance_type='weight'"):
        GBDTSelector().fit(X, y, importance_type="weight")
    with pytest.raises(ValueError, match="topk=6 is more than the 5 features"):
        GBDTSelector(num_boost_round=3).fit(X, y).get_selected_features(6)
    with pytest.raises(ValueError, match="not fitted"):
        GBDTSelector().get_selected_features(2)
    with pytest.raises(ValueError, match="X, y"):
        GBDTSelector().fit(X, y[:-1])


def test_missing_lightgbm_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "lightgbm", None)
    X, y = planted(n=60)
    X = X[:, :5]
    with pytest.raises(ImportError) as info:
        GBDTSelector().fit(X, y)
    assert "pip install lightgbm" in str(info.value) and "\n" not in str(info.value)
