"""Train small models like the seed notebooks, plus broken ones, for the gate tests.

Usage: PYTHONPATH=test/jobs /usr/bin/python3 test/jobs/train_fixture.py OUT_DIR
Writes OUT_DIR/<case>/model.pkl for each case and prints {"cases": {case: folder}} as JSON:
  anomaly-detector      Pipeline(StandardScaler, IsolationForest(n_estimators=50)), 45 features, 1/-1
  predictive-analytics  Pipeline(StandardScaler, MultiOutputRegressor(RandomForest)), 5 in, 5 out
  truncated             the first half of the anomaly-detector file
  not-a-model           a pickled dict
  narrow                the anomaly pipeline trained on 10 features (the gate declares 45)
  nan-output            nan_estimator.NanRegressor (predicts NaN), 5 in, 5 out
  empty                 an empty folder
  tiny                  a 100-byte-ish pickle that creates OUT_DIR/tiny-unpickled if anyone unpickles it
  slow                  a pickle whose unpickling sleeps 30 s
  symlink               model.pkl is a symlink to the anomaly-detector file
"""
import json
import os
import pickle
import sys
import time

import joblib
import numpy as np
from sklearn.ensemble import IsolationForest, RandomForestRegressor
from sklearn.multioutput import MultiOutputRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from nan_estimator import NanRegressor


class Tripwire:
    """Unpickling this opens (creates) the marker file: proof that the gate unpickled it."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, 'w'))


class Sleeper:
    def __reduce__(self):
        return (time.sleep, (30,))


def anomaly_pipeline(features):
    rng = np.random.default_rng(7)
    X = rng.normal(size=(400, features))
    model = Pipeline([('scaler', StandardScaler()),
                      ('model', IsolationForest(random_state=42, n_estimators=50))])
    return model.fit(X)


def predictive_pipeline():
    rng = np.random.default_rng(11)
    X = rng.normal(size=(300, 5))
    y = np.column_stack([X[:, i] * 0.8 + X[:, (i + 1) % 5] * 0.2 for i in range(5)])
    model = Pipeline([('scaler', StandardScaler()),
                      ('model', MultiOutputRegressor(RandomForestRegressor(n_estimators=10, max_depth=5, random_state=42)))])
    return model.fit(X, y)


def main(out):
    cases = {}

    def folder(name):
        path = os.path.join(out, name)
        os.makedirs(path, exist_ok=True)
        cases[name] = path
        return path

    good = os.path.join(folder('anomaly-detector'), 'model.pkl')
    joblib.dump(anomaly_pipeline(45), good)
    joblib.dump(predictive_pipeline(), os.path.join(folder('predictive-analytics'), 'model.pkl'))
    with open(good, 'rb') as src:
        data = src.read()
    with open(os.path.join(folder('truncated'), 'model.pkl'), 'wb') as dst:
        dst.write(data[:len(data) // 2])
    joblib.dump({'weights': list(range(2000)), 'kind': 'not a model'}, os.path.join(folder('not-a-model'), 'model.pkl'))
    joblib.dump(anomaly_pipeline(10), os.path.join(folder('narrow'), 'model.pkl'))
    joblib.dump(NanRegressor(width=5).fit(np.zeros((4, 5))), os.path.join(folder('nan-output'), 'model.pkl'))
    folder('empty')
    with open(os.path.join(folder('tiny'), 'model.pkl'), 'wb') as dst:
        pickle.dump(Tripwire(os.path.join(out, 'tiny-unpickled')), dst)
    with open(os.path.join(folder('slow'), 'model.pkl'), 'wb') as dst:
        pickle.dump(Sleeper(), dst)
    os.symlink(good, os.path.join(folder('symlink'), 'model.pkl'))
    print(json.dumps({'cases': cases}))


if __name__ == '__main__':
    if len(sys.argv) != 2:
        sys.stderr.write('usage: train_fixture.py OUT_DIR\n')
        sys.exit(2)
    main(sys.argv[1])
