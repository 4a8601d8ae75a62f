"""FeatureGradientSelector: recovers planted features, validates its arguments, fits scikit-learn."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import BaseEstimator, clone
from sklearn.feature_selection import SelectorMixin
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from nni.algorithms.feature_engineering.gradient_selector import FeatureGradientSelector
from nni.algorithms.feature_engineering.gradient_selector.gradient_selector import _elbow
from nni.algorithms.feature_engineering.gradient_selector.learnability import chain_coefficients, learnability
from nni.feature_engineering.feature_selector import FeatureSelector

INFORMATIVE = [3, 11, 20, 31]


def planted_regression(n=600, d=40, seed=0, noise=0.5):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) * rng.uniform(0.5, 5.0, size=d)  # mixed scales: zscore must matter
    Xs = X / X.std(axis=0)
    y = 2 * Xs[:, 3] - 1.5 * Xs[:, 11] + 1.0 * Xs[:, 20] + 1.0 * Xs[:, 31] + noise * rng.standard_normal(n)
    return X, y


def planted_classification(n=600, d=40, seed=0):
    X, y = planted_regression(n, d, seed)
    return X, (y > np.median(y)).astype(int)


def test_learnability_is_unbiased_r2_for_independent_features():
    # y = x0 + x1 + noise with unit features: R^2 = 2/3; the noise columns add nothing.
    import torch

    rng = np.random.default_rng(0)
    n, d = 400, 10
    values = []
    for _ in range(20):
        X = rng.standard_normal((n, d))
        y = X[:, 0] + X[:, 1] + rng.standard_normal(n)
        y = (y - y.mean()) / y.std()
        values.append(float(learnability(torch.tensor(X), torch.tensor(y[:, None]), 8, alpha=1.0)))
    # with alpha=1 = the covariance's eigenvalue, the degree-7 polynomial is exact: R^2
    assert np.mean(values) == pytest.approx(2 / 3, abs=0.05)
    # and pure noise features estimate (almost) nothing, unlike the plug-in R^2 (d/n = 0.025 bias)
    X = rng.standard_normal((n, d))
    y = rng.standard_normal(n)
    assert abs(float(learnability(torch.tensor(X), torch.tensor(y[:, None]), 4, alpha=1.0))) < 0.02


def test_chain_coefficients_alternate_with_binomials():
    c = chain_coefficients(3, 10)
    # (-1)^(k-1) C(3,k) 10^k / C(10, k+1)
    assert c == pytest.approx([3 * 10 / 45, -3 * 100 / 120, 1 * 1000 / 210])


@pytest.mark.parametrize("task", ["regression", "classification"])
def test_recovers_planted_features(task):
    if task == "regression":
        X, y = planted_regression()
        fgs = FeatureGradientSelector(n_features=4, classification=False, n_epochs=5, batch_size=200,
                                      target_batch_size=200, random_state=0)
    else:
        X, y = planted_classification()
        fgs = FeatureGradientSelector(n_features=4, n_epochs=5, batch_size=200, target_batch_size=200, random_state=0)
    assert fgs.fit(X, y) is fgs
    assert sorted(fgs.get_selected_features()) == INFORMATIVE
    assert fgs.n_steps_ == 15
    # the strongest coefficient ranks first
    assert fgs.get_selected_features()[0] == 3


def test_automatic_number_of_features_switches_noise_off():
    X, y = planted_regression()
    fgs = FeatureGradientSelector(classification=False, n_epochs=10, batch_size=200, target_batch_size=200,
                                  random_state=0).fit(X, y)
    assert sorted(fgs.get_selected_features()) == INFORMATIVE
    noise = np.setdiff1d(np.arange(X.shape[1]), INFORMATIVE)
    assert fgs.scores_[noise].max() < 0.5 < fgs.scores_[INFORMATIVE].min()


def test_elbow_with_max_features():
    assert _elbow(np.array([0.9, 0.88, 0.85, 0.1, 0.09, 0.08, 0.07])) == 3
    assert _elbow(np.array([1.0, 0.5, 0.25, 0.12, 0.06, 0.03])) == 2
    assert _elbow(np.array([0.9, 0.9, 0.9, 0.9, 0.1])) == 4
    X, y = planted_regression()
    fgs = FeatureGradientSelector(classification=False, max_features=10, n_epochs=10, batch_size=200,
                                  target_batch_size=200, random_state=0).fit(X, y)
    assert set(fgs.get_selected_features()) <= set(INFORMATIVE) and len(fgs.get_selected_features()) >= 2


def test_sparse_input_matches_dense():
    rng = np.random.default_rng(1)
    X, y = planted_regression(seed=1)
    X = X * (rng.random(X.shape) < 0.5)  # half the entries are zero: a real sparse pattern
    X[:, 7] = 0.0  # and one column all zero in every batch
    kwargs = dict(n_features=4, classification=False, n_epochs=3, batch_size=150, target_batch_size=300,
                  random_state=0)
    dense = FeatureGradientSelector(**kwargs).fit(X, y)
    sparse = FeatureGradientSelector(**kwargs).fit(sp.csr_matrix(X), y)
    assert sparse.get_selected_features() == dense.get_selected_features()
    np.testing.assert_allclose(sparse.scores_, dense.scores_, atol=2e-3)
    assert sparse.transform(sp.csr_matrix(X)).shape == (600, 4)


def test_hard_and_soft_groups_select_whole_units():
    X, y = planted_regression()
    groups = np.arange(X.shape[1]) // 2  # columns (2k, 2k+1) form a unit; informative 3, 11, 20, 31
    for soft in (True, False):
        fgs = FeatureGradientSelector(n_features=4, classification=False, soft_grouping=soft, n_epochs=5,
                                      batch_size=200, target_batch_size=200, random_state=0).fit(X, y, groups=groups)
        assert sorted(fgs.get_selected_features()) == [2, 3, 10, 11, 20, 21, 30, 31]
        assert fgs.transform(X).shape == (600, 8)


def test_multiclass_nominal_and_unbalanced():
    rng = np.random.default_rng(0)
    n = 900
    X = rng.standard_normal((n, 30))
    # three classes told apart by columns 5 (class 1) and 9 (class 2); class 2 is rare
    score = np.stack([np.zeros(n), 2.5 * X[:, 5], 2.5 * X[:, 9] - 1.5], axis=1) + rng.gumbel(size=(n, 3))
    y = np.array(["a", "b", "c"])[score.argmax(axis=1)]
    for balanced in (True, False):
        fgs = FeatureGradientSelector(n_features=2, ordinal=False, balanced=balanced, n_epochs=3, batch_size=300,
                                      target_batch_size=300, random_state=0).fit(X, y)
        assert sorted(fgs.get_selected_features()) == [5, 9]
    assert list(fgs.classes_) == ["a", "b", "c"]


@pytest.mark.parametrize("init", ["on", "off", "onhigh", "offhigh", "sklearn"])
def test_inits_still_find_the_features(init):
    X, y = planted_classification()
    fgs = FeatureGradientSelector(n_features=4, init=init, n_epochs=5, batch_size=200, target_batch_size=200,
                                  learning_rate=0.3, random_state=0).fit(X, y)
    assert sorted(fgs.get_selected_features()) == INFORMATIVE


def test_max_time_and_verbose(capsys):
    X, y = planted_classification()
    fgs = FeatureGradientSelector(n_epochs=50, batch_size=100, target_batch_size=100, max_time=1e-9,
                                  verbose=1, random_state=0).fit(X, y)
    assert fgs.n_steps_ == 1
    assert "FeatureGradientSelector step 1: learnability" in capsys.readouterr().out


def test_pipeline_clone_and_selector_mixin():
    X, y = planted_classification()
    fgs = FeatureGradientSelector(n_features=4, n_epochs=5, batch_size=200, target_batch_size=200, random_state=0)
    twin = clone(fgs)
    assert twin.get_params() == fgs.get_params() and not hasattr(twin, "selected_features_")
    pipeline = make_pipeline(fgs, LogisticRegression()).fit(X, y)
    assert pipeline.score(X, y) > 0.85
    mask = fgs.get_support()
    assert mask.dtype == bool and mask.shape == (40,) and list(np.flatnonzero(mask)) == INFORMATIVE
    assert sorted(fgs.get_support(indices=True)) == INFORMATIVE
    reduced = fgs.transform(X)
    np.testing.assert_array_equal(reduced, X[:, INFORMATIVE])
    restored = fgs.inverse_transform(reduced)
    assert restored.shape == X.shape and np.all(restored[:, mask] == X[:, mask]) and np.all(restored[:, ~mask] == 0)
    fgs.set_params(n_features=2)
    assert fgs.n_features == 2


def test_docs_spellings_are_accepted():
    fgs = FeatureGradientSelector(penatly=3, prerocess="center")
    assert fgs.penalty == 3 and fgs.preprocess == "center"
    with pytest.raises(TypeError, match="'n_feature'"):
        FeatureGradientSelector(n_feature=3)


@pytest.mark.parametrize("kwargs,needle", [
    (dict(order=13), "order=13"), (dict(order=0), "order=0"), (dict(penalty=-1), "penalty=-1"),
    (dict(n_features=0), "n_features=0"), (dict(n_features=2.5), "n_features=2.5"),
    (dict(max_features=True), "max_features=True"), (dict(learning_rate=0), "learning_rate=0"),
    (dict(init="random"), "init='random'"), (dict(n_epochs=0), "n_epochs=0"), (dict(shuffle="yes"), "shuffle='yes'"),
    (dict(batch_size=3), "batch_size=3"), (dict(target_batch_size=0), "target_batch_size=0"),
    (dict(max_time=0), "max_time=0"), (dict(classification=1), "classification=1"),
    (dict(preprocess="minmax"), "preprocess='minmax'"), (dict(verbose=-1), "verbose=-1"),
    (dict(device="tpu"), "device='tpu'"), (dict(soft_grouping=None), "soft_grouping=None"),
])
def test_bad_arguments_get_one_line_errors(kwargs, needle):
    with pytest.raises(ValueError) as info:
        FeatureGradientSelector(**kwargs)
    message = str(info.value)
    assert "\n" not in message and needle in message and "allowed" in message


def test_bad_data_gets_one_line_errors():
    X, y = planted_classification(n=50)
    X = X[:, :5]
    cases = [
        (lambda: FeatureGradientSelector(n_features=6).fit(X, y), "n_features: 6 is more than the 5 features"),
        (lambda: FeatureGradientSelector().fit(X, y[:-1]), "y: expected shape [50]"),
        (lambda: FeatureGradientSelector().fit(X, np.zeros(50)), "at least 2 classes"),
        (lambda: FeatureGradientSelector().fit(X[:, 0], y), "X: expected a 2-d array"),
        (lambda: FeatureGradientSelector().fit(np.where(X > 2, np.nan, X), y), "X: contains NaN"),
        (lambda: FeatureGradientSelector(order=12, batch_size=13).fit(X[:10], y[:10]), "needs at least order + 1"),
        (lambda: FeatureGradientSelector().fit(X, y, groups=[0, 1]), "groups: expected one group id per column"),
        (lambda: FeatureGradientSelector(classification=False).fit(X, np.ones(50)), "y: is constant"),
    ]
    for call, needle in cases:
        with pytest.raises(ValueError) as info:
            call()
        assert needle in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(ValueError, match="not fitted"):
        FeatureGradientSelector().get_selected_features()


def test_docs_custom_selector_pattern_works_in_a_pipeline():
    class VarianceTopK(FeatureSelector, BaseEstimator, SelectorMixin):
        def __init__(self, k=2):
            self.k = k

        def fit(self, X, y=None, **kwargs):
            self.X, self.y = X, y
            self.n_features_in_ = X.shape[1]
            self.selected_features_ = list(np.argsort(-X.var(axis=0))[: self.k])
            return self

    rng = np.random.default_rng(0)
    X = rng.standard_normal((100, 6)) * np.array([1, 5, 1, 9, 1, 1])
    y = (X[:, 3] > 0).astype(int)
    pipeline = make_pipeline(VarianceTopK(k=2), LogisticRegression()).fit(X, y)
    assert pipeline[0].get_selected_features() == [3, 1]
    assert pipeline.score(X, y) > 0.95
    assert clone(pipeline[0]).k == 2


def test_import_nni_feature_engineering_stays_light():
    code = ("import sys, nni, nni.feature_engineering, nni.algorithms.feature_engineering; "
            "print(sorted(m for m in ('torch', 'sklearn', 'scipy', 'lightgbm') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"



def noisy_wine(seed):
    from sklearn.datasets import load_wine
    from sklearn.model_selection import train_test_split

    X, y = load_wine(return_X_y=True)
    X = np.hstack([X, np.random.default_rng(10_000 + seed).standard_normal((X.shape[0], 26))])
    X_train, _, y_train, _ = train_test_split(X, y, test_size=0.3, stratify=y, random_state=seed)
    return X_train, y_train


@pytest.mark.parametrize("seed", [0, 1])
def test_elimination_keeps_complementary_features_over_correlated_ones(seed):
    # wine's strongest single features (flavanoids 6, OD280 11, proline 12, alcohol 0) are
    # correlated; the best 3 for a linear model are flavanoids, colour intensity (9) and proline
    # (linear R^2 0.76 against 0.65 - 0.71 for SelectKBest's {6, 11, 12} or {0, 9, 12}, which
    # ranking by the final mask alone picked)
    X, y = noisy_wine(seed)
    fgs = FeatureGradientSelector(n_features=3, n_epochs=30, batch_size=256, target_batch_size=256, ordinal=False,
                                  random_state=seed).fit(X, y)
    assert sorted(fgs.get_selected_features()) == [6, 9, 12]
    # every other column was eliminated during the search and scores 0
    assert sorted(fgs.eliminated_ + fgs.get_selected_features()) == list(range(X.shape[1]))
    assert np.all(fgs.scores_[fgs.eliminated_] == 0) and np.all(fgs.scores_[[6, 9, 12]] > 0.5)


def test_no_elimination_without_n_features_or_with_one_step():
    X, y = noisy_wine(0)
    auto = FeatureGradientSelector(n_epochs=10, batch_size=256, target_batch_size=256, random_state=0).fit(X, y)
    assert auto.eliminated_ == []
    one_step = FeatureGradientSelector(n_features=3, batch_size=256, target_batch_size=256, random_state=0).fit(X, y)
    assert one_step.n_steps_ == 1 and one_step.eliminated_ == []
