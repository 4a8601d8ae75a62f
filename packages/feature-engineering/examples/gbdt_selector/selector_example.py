"""The docs' GBDTSelector usage (needs LightGBM: pip install lightgbm), on scikit-learn's breast-cancer data."""
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split

from nni.algorithms.feature_engineering.gbdt_selector import GBDTSelector

# load data
X, y = load_breast_cancer(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.33, random_state=42)

lgb_params = {
    "boosting_type": "gbdt",
    "objective": "binary",
    "metric": "binary_logloss",
    "num_leaves": 20,
    "learning_rate": 0.05,
    "feature_fraction": 0.9,
    "bagging_fraction": 0.8,
    "bagging_freq": 5,
    "verbose": -1,
}
eval_ratio = 0.1
early_stopping_rounds = 10
importance_type = "gain"
num_boost_round = 200
topk = 10

# initialize a selector
fgs = GBDTSelector()
# fit data
fgs.fit(X_train, y_train, lgb_params=lgb_params, eval_ratio=eval_ratio, early_stopping_rounds=early_stopping_rounds,
        importance_type=importance_type, num_boost_round=num_boost_round)
# get important features: the indices of the topk columns
print("selected features:", fgs.get_selected_features(topk))
