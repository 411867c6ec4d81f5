"""A regressor whose predictions are all NaN: the gate must reject it on output-values.

Importable by the gate when test/jobs is on PYTHONPATH (joblib pickles the class by module path).
"""
import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin


class NanRegressor(BaseEstimator, RegressorMixin):
    def __init__(self, width=5):
        self.width = width

    def fit(self, X, y=None):
        self.n_features_in_ = np.asarray(X).shape[1]
        return self

    def predict(self, X):
        return np.full((np.asarray(X).shape[0], self.width), np.nan)
