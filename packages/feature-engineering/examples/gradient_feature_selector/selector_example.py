"""The docs' FeatureGradientSelector usage, on scikit-learn's breast-cancer data."""
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split

from nni.algorithms.feature_engineering.gradient_selector import FeatureGradientSelector

# load data
X, y = load_breast_cancer(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.33, random_state=42)

# initialize a selector
fgs = FeatureGradientSelector(n_features=10, n_epochs=10, batch_size=256, target_batch_size=256, random_state=0)
# fit data
fgs.fit(X_train, y_train)
# get important features: the indices of the selected columns
print("selected features:", fgs.get_selected_features())
