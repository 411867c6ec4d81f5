"""storage-bootstrap's placeholder Job (docs/storage.md "Bootstrap"): build a real scikit-learn model of the
catalog's declared input width and output kind, and PUT it to the presigned URL the function made. The Job holds
no credentials: the URL allows exactly one PUT of one staging object until it expires, and the function checks
the bytes (sha256, a loadable pickle) before anything is served from them.

Environment:
  MODEL         the catalog model name (reported back)
  FEATURES      input width, int >= 1
  OUTPUT_KIND   "label" or "regression"
  LABELS        label only: JSON list of allowed values, e.g. [1,-1]
  OUTPUT_WIDTH  regression only: output width, int >= 1
  UPLOAD_URL    presigned S3 PUT URL (never printed)

Models: labels [1,-1] -> Pipeline(StandardScaler, IsolationForest) as the anomaly notebook builds; other labels ->
Pipeline(StandardScaler, DummyClassifier(most_frequent)) answering the first label; regression ->
Pipeline(StandardScaler, DummyRegressor(constant 0)) of the declared width. Trained on seeded synthetic rows.
Result (termination message): {"model","bytes","sha256","kind","features","status":"uploaded"} or {"error": ...}.
"""
import os
import sys

sys.path = [p for p in sys.path if os.path.abspath(p or '.') != os.path.dirname(os.path.abspath(__file__))]

import importlib.util  # noqa: E402

_common_spec = importlib.util.spec_from_file_location('mlops_jobs_common', os.path.join(os.path.dirname(os.path.abspath(__file__)), 'jobs_common.py'))
common = importlib.util.module_from_spec(_common_spec)
_common_spec.loader.exec_module(common)

import hashlib  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import urllib.error  # noqa: E402
import urllib.request  # noqa: E402


def settings(env):
    model = common.dns_label('MODEL', env.get('MODEL'))
    try:
        features = int(env.get('FEATURES', ''))
    except ValueError:
        raise common.UsageError('FEATURES must be an integer')
    if features < 1 or features > 100000:
        raise common.UsageError('FEATURES must be 1..100000')
    kind = env.get('OUTPUT_KIND', '')
    if kind == 'label':
        try:
            spec = json.loads(env.get('LABELS') or '')
        except ValueError:
            raise common.UsageError('LABELS must be a JSON list')
        if not isinstance(spec, list) or not spec:
            raise common.UsageError('LABELS must be a non-empty JSON list')
    elif kind == 'regression':
        try:
            spec = int(env.get('OUTPUT_WIDTH', ''))
        except ValueError:
            raise common.UsageError('OUTPUT_WIDTH must be an integer')
        if spec < 1:
            raise common.UsageError('OUTPUT_WIDTH must be >= 1')
    else:
        raise common.UsageError('OUTPUT_KIND must be "label" or "regression"')
    url = env.get('UPLOAD_URL', '')
    if not url.startswith(('http://', 'https://')):
        raise common.UsageError('UPLOAD_URL must be an http(s) URL')
    return model, features, kind, spec, url


def build(features, kind, spec):
    import numpy as np
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    X = np.random.default_rng(42).normal(size=(200, features))
    if kind == 'label' and sorted(spec, key=str) == sorted([1, -1], key=str):
        from sklearn.ensemble import IsolationForest
        return Pipeline([('scaler', StandardScaler()), ('model', IsolationForest(random_state=42, n_estimators=50))]).fit(X), 'isolation-forest'
    if kind == 'label':
        from sklearn.dummy import DummyClassifier
        y = [spec[0]] * len(X)
        return Pipeline([('scaler', StandardScaler()), ('model', DummyClassifier(strategy='most_frequent'))]).fit(X, y), 'constant-label'
    from sklearn.dummy import DummyRegressor
    y = np.zeros((len(X), spec)) if spec > 1 else np.zeros(len(X))
    return Pipeline([('scaler', StandardScaler()), ('model', DummyRegressor(strategy='constant', constant=y[0]))]).fit(X, y), 'constant-regression'


def main():
    try:
        model, features, kind, spec, url = settings(os.environ)
    except common.UsageError as err:
        common.write_result(common.encode({'error': 'usage: %s' % err}))
        return 2
    try:
        import joblib
        estimator, what = build(features, kind, spec)
    except ImportError as err:
        common.write_result(common.encode({'error': 'scikit-learn is not available in this image: %s' % err}))
        return 1
    buf = io.BytesIO()
    joblib.dump(estimator, buf)
    body = buf.getvalue()
    digest = hashlib.sha256(body).hexdigest()
    request = urllib.request.Request(url, data=body, method='PUT', headers={'Content-Type': 'application/octet-stream', 'Content-Length': str(len(body))})
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            status = answer.status
    except urllib.error.HTTPError as err:
        common.write_result(common.encode({'error': 'upload refused: HTTP %d' % err.code}))
        return 1
    except (urllib.error.URLError, OSError) as err:
        common.write_result(common.encode({'error': 'upload failed: %s' % getattr(err, 'reason', err)}))
        return 1
    if status // 100 != 2:
        common.write_result(common.encode({'error': 'upload answered HTTP %d' % status}))
        return 1
    common.write_result(common.encode({'model': model, 'bytes': len(body), 'sha256': digest, 'kind': what, 'features': features, 'status': 'uploaded'}))
    return 0


if __name__ == '__main__':
    sys.exit(main())
