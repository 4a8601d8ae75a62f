"""The docs' scikit-learn integration: a selector in a Pipeline, beside the tree-based one.

Data: scikit-learn's digits with 64 Gaussian noise columns appended.
"""
import numpy as np
from sklearn.datasets import load_digits
from sklearn.ensemble import ExtraTreesClassifier
from sklearn.feature_selection import SelectFromModel
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from nni.algorithms.feature_engineering.gradient_selector import FeatureGradientSelector

X, y = load_digits(return_X_y=True)
X = np.hstack([X, np.random.default_rng(0).standard_normal(X.shape)])
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.1, random_state=0)

pipelines = {
    "all features": make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)),
    "FeatureGradientSelector": make_pipeline(
        FeatureGradientSelector(n_features=20, ordinal=False, n_epochs=5, batch_size=500, target_batch_size=500,
                                random_state=0),
        StandardScaler(), LogisticRegression(max_iter=1000)),
    "TreeBasedClassifier": make_pipeline(
        SelectFromModel(ExtraTreesClassifier(n_estimators=50, random_state=0)),
        StandardScaler(), LogisticRegression(max_iter=1000)),
}
for name, pipeline in pipelines.items():
    pipeline.fit(X_train, y_train)
    kept = pipeline[0].get_support(indices=True) if hasattr(pipeline[0], "get_support") else np.arange(X.shape[1])
    noise = int(np.sum(kept >= 64))
    print(f"{name}: test score {pipeline.score(X_test, y_test):.4f}, {len(kept)} features, {noise} noise")
