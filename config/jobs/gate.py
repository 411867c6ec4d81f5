#!/usr/bin/env python3
"""Health gate for a staged model (the `<run>-gate` Job, run in the notebook image: numpy, joblib, sklearn).

Environment:
  MODEL_DIR         staged folder holding model.pkl (absolute, no ".."), e.g. /mnt/models/.runs/<run>/<model>
  FEATURES          declared feature count, int >= 1
  OUTPUT_KIND       "label" or "regression"
  LABELS            label only: JSON list of allowed values, e.g. [1,-1]
  OUTPUT_WIDTH      regression only: outputs per row, int >= 1
  MIN_BYTES         minimum size of model.pkl in bytes, int >= 0
  PROBE_ROWS        probe rows to predict on (default 8)
  SEED              seed of numpy.random.default_rng for the probe rows (default 42)
  MAX_LOAD_SECONDS  limit for joblib.load, and separately for predict (default 60)
  TERMINATION_LOG   where the result JSON goes (default /dev/termination-log); it is also printed on stdout
  SERVING_SKLEARN   optional: scikit-learn version of the runtime that will serve the model ("1.5" or "1.5.2");
                    adds the serving-runtime check (see below)
  BASELINE          optional: JSON thresholds for the comparison with the served release; adds the checks
                    reference-data and baseline-* (see below):
                    {"minAgreement", "maxRateChange", "maxRelativeChange", "maxMetricRegression" (each optional),
                     "advisory": [check names], "triggers": {"<trigger>": {same keys, overriding}}}
  TRIGGER           what started the run (schedule, drift, git, manual, ...): picks BASELINE.triggers[TRIGGER];
                    for "drift" the prediction-agreement checks are advisory unless the catalog says otherwise
  REFERENCE_DATA    with BASELINE: absolute path of the reference data set (.npz or .csv, format below)
  ROOT, MODEL       with BASELINE: mount path of the shared PVC and the model name (served release lookup)
  ANOMALY_LABEL     label only: the value meaning "anomaly" (default -1 when in LABELS, else the last label)

Checks, in this order: exists, min-bytes, sha256, load, has-predict, predict, output-shape, output-values.
Each is {"name", "ok", "message", "observed"}. A check whose prerequisite failed is reported failed with
message "skipped: <prerequisite> failed" (missing evidence is a fail). Prerequisites: min-bytes and sha256
need exists; load needs min-bytes and sha256; each later check needs the one before it. Nothing is imported
or unpickled before exists and min-bytes pass, and the bytes unpickled are the bytes hashed.

Probe rows are default_rng(SEED).normal(size=(PROBE_ROWS, FEATURES)) rounded to 6 decimals, and the model
predicts ON the rounded rows, so anyone sending the reported rows to the endpoint gets the same outputs.
Expected outputs: labels as JSON ints (or strings), regression floats rounded to 9 digits. When the
result would exceed 4096 bytes, trailing probe rows (and their expected outputs) are left out and
"truncated": true is set. Probe rows and expected outputs are empty unless every check up to output-values passed (rows
without verified outputs are nothing an endpoint check could compare against). With very wide inputs
(several hundred features) not even one row fits and both lists are empty.

Serving runtime (serving-runtime check; needs load): the scikit-learn version each estimator in the pickle
was saved with (sklearn stores it in the estimator state; unpickling under another version warns with both
versions, and no warning means the gate's own version) is compared with SERVING_SKLEARN. Pickles load only
under the same major.minor (scikit-learn gives no compatibility across minor versions): a different major or
minor fails; a patch difference passes with a note.

Baseline (reference-data needs output-values; baseline-* need reference-data):
  reference data: .npz with X (rows x FEATURES) and optional y (label: rows; regression: rows x width), or
  .csv with a header row, target columns named "y" or "y_<anything>", every other column a feature.
  The served release: ROOT/MODEL/RELEASE names the run, ROOT/.releases/MODEL/<run>/{model.pkl, release.json}.
  Nothing served (no RELEASE, no model.pkl) or release.json {"placeholder": true} -> comparison skipped (checks
  pass, message says so). release.json {"archived": true} (served before the lifecycle, never gated, no
  metrics) -> predictions compared, baseline-metrics skipped and said. No RELEASE but a ROOT/MODEL/model.pkl
  counts as archived.
  label: baseline-agreement (share of rows with the same label >= minAgreement), baseline-rate (|change of the
  anomaly rate| <= maxRateChange); regression: baseline-change (largest per-output mean |candidate - served|
  / mean |served| <= maxRelativeChange). baseline-metrics: the worst metric regression <= maxMetricRegression:
  relative increase of MAE/RMSE, absolute drop of R2 (regression); absolute drop of precision/recall (label).
  Needs targets in the reference data: without them a required metric check fails (missing evidence).
  A threshold left out is not checked. Advisory checks report their verdict in the message but pass.
  metrics.json next to model.pkl (optional, written by a notebook): {"metrics": {"<name>": number, ...}};
  reported as notebookMetrics, never required.

Result: {"ok": every check ok, "checks": [...], "bytes", "sha256", "loadSeconds",
         "probe": {"rows": [[...]], "expected": [...]}, "python", "sklearn", "truncated"?, "error"?,
         "runtime"?: {"pickled": [versions], "serving", "gate"},
         "baseline"?: {"served", "reference", "trigger", "advisory", "thresholds", "candidate", "servedMetrics",
                       "comparison", "metricChanges", "skipped"?},
         "notebookMetrics"?: {...}}
Exit code 0 when the checks ran (the verdict is in "ok"), 2 on a usage error (bad environment).

Usage:  MODEL_DIR=/mnt/models/.runs/r1/anomaly-detector FEATURES=45 OUTPUT_KIND=label LABELS='[1,-1]' \\
        MIN_BYTES=1024 python3 gate.py
"""
import os
import sys

# The scripts share one mounted folder and copy.py would shadow the standard library's `copy` module
# (which pickle, numpy and sklearn import): never import from the script's own folder.
if sys.path and sys.path[0] and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    del sys.path[0]

import importlib.util

_common_spec = importlib.util.spec_from_file_location('mlops_jobs_common', os.path.join(os.path.dirname(os.path.abspath(__file__)), 'jobs_common.py'))
common = importlib.util.module_from_spec(_common_spec)
_common_spec.loader.exec_module(common)
UsageError = common.UsageError

import hashlib
import io
import json
import math
import platform
import re
import stat
import threading
import time
import warnings

MAX_RESULT_BYTES = 4096
MAX_MESSAGE = 240
CHECK_NAMES = ('exists', 'min-bytes', 'sha256', 'load', 'has-predict', 'predict', 'output-shape', 'output-values')
PREREQUISITES = {
    'exists': (),
    'min-bytes': ('exists',),
    'sha256': ('exists',),
    'load': ('min-bytes', 'sha256'),
    'has-predict': ('load',),
    'predict': ('has-predict',),
    'output-shape': ('predict',),
    'output-values': ('output-shape',),
    'serving-runtime': ('load',),
    'reference-data': ('output-values',),
    'baseline-agreement': ('reference-data',),
    'baseline-rate': ('reference-data',),
    'baseline-change': ('reference-data',),
    'baseline-metrics': ('reference-data',),
}
UNPICKLE_WARNING = re.compile(r'unpickle estimator (\S+) from version (\S+) when using version (\S+)')
INT = re.compile(r'^[0-9]+$')


# ---------------------------------------------------------------- environment

def env_int(env, name, default=None, minimum=0, maximum=None):
    raw = env.get(name)
    if raw is None or raw.strip() == '':
        if default is None:
            raise UsageError('%s is required' % name)
        return default
    raw = raw.strip()
    if not INT.match(raw):
        raise UsageError('%s must be an integer (got %r)' % (name, raw[:40]))
    value = int(raw)
    if value < minimum or (maximum is not None and value > maximum):
        raise UsageError('%s must be in [%s, %s] (got %d)' % (name, minimum, maximum if maximum is not None else 'inf', value))
    return value


def env_seconds(env, name, default):
    raw = env.get(name)
    if raw is None or raw.strip() == '':
        return default
    try:
        value = float(raw)
    except ValueError:
        raise UsageError('%s must be a number of seconds (got %r)' % (name, raw[:40]))
    if not math.isfinite(value) or value <= 0:
        raise UsageError('%s must be a positive number of seconds' % name)
    return value


def read_settings(env):
    model_dir = env.get('MODEL_DIR') or ''
    if not model_dir:
        raise UsageError('MODEL_DIR is required')
    if not os.path.isabs(model_dir) or '..' in model_dir.split('/'):
        raise UsageError('MODEL_DIR must be an absolute path without ".." (got %r)' % model_dir[:200])
    kind = env.get('OUTPUT_KIND', '')
    if kind not in ('label', 'regression'):
        raise UsageError('OUTPUT_KIND must be "label" or "regression" (got %r)' % kind[:40])
    settings = {
        'model_dir': model_dir,
        'features': env_int(env, 'FEATURES', minimum=1, maximum=100000),
        'kind': kind,
        'labels': None,
        'width': None,
        'min_bytes': env_int(env, 'MIN_BYTES'),
        'probe_rows': env_int(env, 'PROBE_ROWS', default=8, minimum=1, maximum=10000),
        'seed': env_int(env, 'SEED', default=42),
        'max_seconds': env_seconds(env, 'MAX_LOAD_SECONDS', 60.0),
    }
    if settings['features'] * settings['probe_rows'] > 10000000:
        raise UsageError('FEATURES x PROBE_ROWS is too large')
    if kind == 'label':
        try:
            labels = json.loads(env.get('LABELS') or '')
        except ValueError:
            raise UsageError('LABELS must be a JSON list (got %r)' % (env.get('LABELS') or '')[:80])
        if not isinstance(labels, list) or not labels or not all(
                isinstance(v, (int, float, str)) and not isinstance(v, bool) for v in labels):
            raise UsageError('LABELS must be a non-empty JSON list of numbers or strings')
        settings['labels'] = labels
    else:
        settings['width'] = env_int(env, 'OUTPUT_WIDTH', minimum=1, maximum=100000)
    settings['serving_sklearn'] = None
    serving = (env.get('SERVING_SKLEARN') or '').strip()
    if serving:
        if not VERSION.match(serving):
            raise UsageError('SERVING_SKLEARN must be a version like 1.5 or 1.5.2 (got %r)' % serving[:40])
        settings['serving_sklearn'] = serving
    settings['baseline'] = None
    if (env.get('BASELINE') or '').strip():
        settings['baseline'] = read_baseline(env, settings)
    return settings


THRESHOLDS = ('minAgreement', 'maxRateChange', 'maxRelativeChange', 'maxMetricRegression')
AGREEMENT_CHECKS = ('baseline-agreement', 'baseline-rate', 'baseline-change')
VERSION = re.compile(r'^[0-9]+\.[0-9]+(\.[0-9]+)?([.-]?[A-Za-z0-9.+-]*)?$')


def read_baseline(env, settings):
    try:
        spec = json.loads(env.get('BASELINE'))
    except ValueError:
        raise UsageError('BASELINE must be a JSON object')
    if not isinstance(spec, dict):
        raise UsageError('BASELINE must be a JSON object')
    trigger = (env.get('TRIGGER') or '').strip()
    triggers = spec.get('triggers') or {}
    if not isinstance(triggers, dict):
        raise UsageError('BASELINE.triggers must be an object')
    # A drift retrain is meant to change predictions: agreement is advisory unless the catalog says otherwise.
    resolved = {'advisory': list(AGREEMENT_CHECKS) if trigger == 'drift' else []}
    for layer in (spec, triggers.get(trigger) or {}):
        if not isinstance(layer, dict):
            raise UsageError('BASELINE.triggers.%s must be an object' % trigger)
        for key in THRESHOLDS:
            if key in layer:
                value = layer[key]
                if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                          or not math.isfinite(value) or value < 0):
                    raise UsageError('BASELINE %s must be a number >= 0 or null' % key)
                resolved[key] = value
        if 'advisory' in layer:
            advisory = layer['advisory']
            if not isinstance(advisory, list) or not all(isinstance(a, str) for a in advisory):
                raise UsageError('BASELINE advisory must be a list of check names')
            resolved['advisory'] = advisory
    for key in THRESHOLDS:
        resolved.setdefault(key, None)
    reference = env.get('REFERENCE_DATA') or ''
    if not reference or not os.path.isabs(reference) or '..' in reference.split('/'):
        raise UsageError('REFERENCE_DATA must be an absolute path without ".." when BASELINE is set')
    root = env.get('ROOT') or ''
    if not root or not os.path.isabs(root) or '..' in root.split('/'):
        raise UsageError('ROOT must be an absolute path without ".." when BASELINE is set')
    resolved.update({'trigger': trigger or None, 'reference': reference, 'root': root,
                     'model': common.dns_label('MODEL', env.get('MODEL'))})
    if settings['kind'] == 'label':
        raw = env.get('ANOMALY_LABEL')
        labels = settings['labels']
        if raw is None or raw == '':
            anomaly = -1 if -1 in labels else labels[-1]
        else:
            try:
                anomaly = json.loads(raw)
            except ValueError:
                anomaly = raw
            if anomaly not in labels:
                raise UsageError('ANOMALY_LABEL must be one of LABELS')
        resolved['anomaly'] = anomaly
    return resolved


# ---------------------------------------------------------------- result

def encode(obj):
    # Strict JSON: a NaN in the report must fail loudly here, not reach the function as invalid JSON.
    return common.encode(obj, allow_nan=False)


def size_of(obj):
    return len(encode(obj).encode('utf-8'))


def emit(result):
    """Write the result to the termination log and stdout, shrunk to fit the 4 KiB termination message."""
    common.write_result(fit(result))


def fit(result):
    """Shrink to MAX_RESULT_BYTES: fewer probe rows first, then shorter messages, then the bare verdict."""
    if size_of(result) <= MAX_RESULT_BYTES:
        return encode(result)
    shrunk = dict(result, truncated=True)
    probe = shrunk.get('probe') or {'rows': [], 'expected': []}
    rows, expected = list(probe['rows']), list(probe['expected'])
    while rows and size_of(dict(shrunk, probe={'rows': rows, 'expected': expected})) > MAX_RESULT_BYTES:
        rows.pop()
        expected.pop()
    shrunk['probe'] = {'rows': rows, 'expected': expected}
    if size_of(shrunk) <= MAX_RESULT_BYTES:
        return encode(shrunk)
    shrunk['checks'] = [dict(c, message=c['message'][:60], observed=None) for c in shrunk.get('checks', [])]
    if isinstance(shrunk.get('error'), str):
        shrunk['error'] = shrunk['error'][:200]
    if size_of(shrunk) <= MAX_RESULT_BYTES:
        return encode(shrunk)
    return encode({'ok': False, 'truncated': True, 'error': 'result too large',
                   'checks': [{'name': c['name'], 'ok': c['ok']} for c in shrunk.get('checks', [])]})


def short(text):
    text = str(text)
    return text if len(text) <= MAX_MESSAGE else text[:MAX_MESSAGE - 3] + '...'


def describe(err):
    return short('%s: %s' % (type(err).__name__, err))


# ---------------------------------------------------------------- helpers

def with_limit(fn, seconds):
    """Run fn in a daemon thread; ('ok', value) | ('error', exc) | ('timeout', None). A hung unpickle or
    predict must not hang the Job until its deadline: the caller reports and exits."""
    box = {}

    def target():
        try:
            box['value'] = fn()
        except BaseException as err:  # the model's own code may raise anything, SystemExit included
            box['error'] = err

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        return 'timeout', None
    if 'error' in box:
        return 'error', box['error']
    return 'ok', box.get('value')


def sklearn_version():
    """Read from package metadata so nothing is imported before the size checks pass."""
    if 'sklearn' in sys.modules:
        return getattr(sys.modules['sklearn'], '__version__', None)
    try:
        from importlib import metadata
        return metadata.version('scikit-learn')
    except Exception:
        return None


def label_json(value):
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, (int, float, str)):
        return value
    return str(value)


def label_allowed(value, labels):
    """Strings match strings, numbers match numbers (1 == 1.0); never bools, NaN or other objects."""
    if isinstance(value, bool):
        return False
    if isinstance(value, str):
        return any(isinstance(l, str) and value == l for l in labels)
    if isinstance(value, (int, float)):
        return math.isfinite(value) and any(not isinstance(l, str) and value == l for l in labels)
    return False


# ---------------------------------------------------------------- runtime and baseline helpers

MAX_REFERENCE_ROWS = 100000


def rounded(value):
    """4 significant digits: the comparison has to fit the 4 KiB termination message."""
    if isinstance(value, list):
        return [rounded(v) for v in value]
    if isinstance(value, float) and math.isfinite(value):
        return float('%.4g' % value)
    return value


def minor_of(version):
    parts = re.findall(r'[0-9]+', version)[:2]
    return tuple(int(p) for p in parts) if len(parts) == 2 else None


def pickled_versions(caught, data):
    """scikit-learn versions the estimators were pickled with: sklearn's BaseEstimator.__setstate__ warns
    (InconsistentVersionWarning since 1.3, a UserWarning before) when it differs from the running one, and the
    state carries `_sklearn_version` whenever a sklearn estimator is in the pickle."""
    found = []
    for w in caught:
        version = getattr(w.message, 'original_sklearn_version', None)
        if version is None:
            match = UNPICKLE_WARNING.search(str(w.message))
            version = match.group(2).rstrip('.') if match else None
        if version and version not in found:
            found.append(version)
    if not found and data is not None and b'_sklearn_version' in data:
        current = sklearn_version()
        if current:
            found.append(current)
    return found


def read_notebook_metrics(model_dir):
    """metrics.json next to model.pkl: {"metrics": {"<name>": number}}; anything else is reported as invalid."""
    path = os.path.join(model_dir, 'metrics.json')
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode) or os.path.getsize(path) > 65536:
            return {'invalid': 'not a regular file under 64 KiB'}
        with open(path, encoding='utf-8') as src:
            doc = json.load(src)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:
        return {'invalid': short(describe(err))}
    values = doc.get('metrics') if isinstance(doc, dict) else None
    if not isinstance(values, dict):
        return {'invalid': 'expected {"metrics": {name: number}}'}
    good = {str(k)[:64]: rounded(float(v)) for k, v in list(values.items())[:16]
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}
    return {'metrics': good}


def parse_cell(text):
    try:
        value = float(text)
    except ValueError:
        return text
    return int(value) if value.is_integer() else value


def load_reference(path, s):
    import numpy as np
    if path.endswith('.npz'):
        with np.load(path, allow_pickle=False) as data:
            if 'X' not in data.files:
                raise ValueError('%s has no X array' % os.path.basename(path))
            X = np.asarray(data['X'], dtype=np.float64)
            y = np.asarray(data['y']) if 'y' in data.files else None
    elif path.endswith('.csv'):
        import csv
        with open(path, newline='', encoding='utf-8') as src:
            rows = list(csv.reader(src))
        if not rows:
            raise ValueError('%s is empty' % os.path.basename(path))
        header, body = rows[0], [r for r in rows[1:] if r]
        targets = [i for i, h in enumerate(header) if h == 'y' or h.startswith('y_')]
        features = [i for i in range(len(header)) if i not in targets]
        X = np.array([[float(r[i]) for i in features] for r in body], dtype=np.float64)
        y = None
        if targets:
            cells = [[parse_cell(r[i]) for i in targets] for r in body]
            y = np.array([c[0] for c in cells]) if s['kind'] == 'label' else np.array(cells, dtype=np.float64)
    else:
        raise ValueError('reference data must be .npz or .csv (got %s)' % os.path.basename(path))
    if X.ndim != 2 or X.shape[0] < 1 or X.shape[1] != s['features']:
        raise ValueError('reference X has shape %s, expected [rows, %d]' % (list(X.shape), s['features']))
    if X.shape[0] > MAX_REFERENCE_ROWS or not np.isfinite(X).all():
        raise ValueError('reference X must have at most %d rows of finite numbers' % MAX_REFERENCE_ROWS)
    if y is not None:
        if s['kind'] == 'regression' and y.ndim == 1 and s['width'] == 1:
            y = y.reshape(-1, 1)
        want = (X.shape[0],) if s['kind'] == 'label' else (X.shape[0], s['width'])
        if tuple(y.shape) != want:
            raise ValueError('reference y has shape %s, expected %s' % (list(y.shape), list(want)))
        if s['kind'] == 'regression':
            y = y.astype(np.float64)
    return X, y


def shaped(value, rows, s):
    import numpy as np
    arr = np.asarray(value)
    want = (rows,) if s['kind'] == 'label' else (rows, s['width'])
    if tuple(arr.shape) != want:
        raise ValueError('predictions have shape %s, expected %s' % (list(arr.shape), list(want)))
    if s['kind'] == 'regression':
        arr = arr.astype(np.float64)
        if not np.isfinite(arr).all():
            raise ValueError('predictions are not all finite')
    return arr


def read_json(path):
    try:
        with open(path, encoding='utf-8') as src:
            doc = json.load(src)
        return doc if isinstance(doc, dict) else {}
    except (OSError, ValueError):
        return {}


def regular_file(path):
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def find_served(root, model):
    """What the predictor serves (layout of config/jobs/promote.py): <model>/RELEASE names the run, its kept
    copy and release.json are under .releases/<model>/<run>/."""
    served_dir = os.path.join(root, model)
    try:
        with open(os.path.join(served_dir, 'RELEASE'), encoding='utf-8') as src:
            release = src.read().strip()
    except OSError:
        release = ''
    if release and not common.DNS1123_LABEL.match(release):
        release = ''
    if not release:
        path = os.path.join(served_dir, 'model.pkl')
        if regular_file(path):
            return {'state': 'archived', 'release': None, 'path': path}
        return {'state': 'none', 'release': None}
    folder = os.path.join(root, '.releases', model, release)
    info = read_json(os.path.join(folder, 'release.json'))
    if info.get('placeholder') is True:
        return {'state': 'placeholder', 'release': release}
    path = os.path.join(folder, 'model.pkl')
    if not regular_file(path):
        path = os.path.join(served_dir, 'model.pkl')
    state = 'archived' if info.get('archived') is True else 'release'
    return {'state': state, 'release': release, 'path': path}


def describe_served(served):
    if served['state'] == 'none':
        return 'nothing'
    return '%s%s' % (served['release'] or '<model>/model.pkl', '' if served['state'] == 'release' else ' (%s)' % served['state'])


def load_model(path):
    import joblib
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        return joblib.load(path)


def metrics(pred, y, s):
    import numpy as np
    if s['kind'] == 'label':
        anomaly = s['baseline']['anomaly']
        p, t = pred == anomaly, y == anomaly
        tp, pp, tt = int((p & t).sum()), int(p.sum()), int(t.sum())
        return {'precision': rounded(tp / pp if pp else (1.0 if tt == 0 else 0.0)),
                'recall': rounded(tp / tt if tt else 1.0),
                'anomalyRate': rounded(float(p.mean()))}
    err = pred - y
    ss_res = (err ** 2).sum(axis=0)
    ss_tot = ((y - y.mean(axis=0)) ** 2).sum(axis=0)
    r2 = [1.0 - r / t if t > 0 else (1.0 if r == 0 else 0.0) for r, t in zip(ss_res.tolist(), ss_tot.tolist())]
    return {'mae': rounded(np.abs(err).mean(axis=0).tolist()),
            'rmse': rounded(np.sqrt((err ** 2).mean(axis=0)).tolist()),
            'r2': rounded(r2)}


def comparison(candidate, served, s):
    import numpy as np
    if s['kind'] == 'label':
        anomaly = s['baseline']['anomaly']
        c_rate, s_rate = float((candidate == anomaly).mean()), float((served == anomaly).mean())
        return {'agreement': rounded(float((candidate == served).mean())), 'candidateRate': rounded(c_rate),
                'servedRate': rounded(s_rate), 'rateChange': rounded(c_rate - s_rate)}
    change = np.abs(candidate - served).mean(axis=0)
    scale = np.maximum(np.abs(served).mean(axis=0), 1e-12)
    return {'meanAbsChange': rounded(change.tolist()), 'relativeChange': rounded((change / scale).tolist())}


def metric_changes(cand, served, kind):
    """Positive = worse: relative increase of an error (MAE, RMSE), absolute drop of a score (R2, precision, recall)."""
    if kind == 'label':
        return {k: rounded(served[k] - cand[k]) for k in ('precision', 'recall')}
    return {
        'mae': rounded([(c - v) / max(v, 1e-12) for c, v in zip(cand['mae'], served['mae'])]),
        'rmse': rounded([(c - v) / max(v, 1e-12) for c, v in zip(cand['rmse'], served['rmse'])]),
        'r2': rounded([v - c for c, v in zip(cand['r2'], served['r2'])]),
    }


def worst_regression(changes):
    items = []
    for name, value in changes.items():
        if isinstance(value, list):
            items += [('%s[%d]' % (name, j), v) for j, v in enumerate(value)]
        else:
            items.append((name, value))
    return max(items, key=lambda item: item[1])


# ---------------------------------------------------------------- the gate

class Gate:
    def __init__(self, settings):
        self.s = settings
        self.path = os.path.join(settings['model_dir'], 'model.pkl')
        self.checks = []
        self.status = {}
        self.data = None
        self.model = None
        self.outputs = None
        self.rows = []
        self.expected = []
        self.bytes = None
        self.sha256 = None
        self.load_seconds = None
        self.hung = False
        self.names = list(CHECK_NAMES)
        if settings.get('serving_sklearn'):
            self.names.append('serving-runtime')
        if settings.get('baseline'):
            per_kind = ['baseline-agreement', 'baseline-rate'] if settings['kind'] == 'label' else ['baseline-change']
            self.names += ['reference-data'] + per_kind + ['baseline-metrics']
        self.pickled_versions = []
        self.runtime = None
        self.baseline = None
        self.reference = None
        self.served = None
        self.notebook_metrics = read_notebook_metrics(settings['model_dir'])

    def record(self, name, ok, message, observed=None):
        self.status[name] = ok
        self.checks.append({'name': name, 'ok': bool(ok), 'message': short(message), 'observed': observed})

    def run(self):
        for name in self.names:
            failed = [p for p in PREREQUISITES[name] if not self.status.get(p)]
            if failed:
                self.record(name, False, 'skipped: %s failed' % failed[0])
                continue
            try:
                getattr(self, 'check_' + name.replace('-', '_'))()
            except Exception as err:
                self.record(name, False, describe(err))
        return self.result()

    def check_exists(self):
        try:
            info = os.lstat(self.path)
        except FileNotFoundError:
            return self.record('exists', False, 'model.pkl not found in %s' % self.s['model_dir'], False)
        if not stat.S_ISREG(info.st_mode):
            kind = 'a symlink' if stat.S_ISLNK(info.st_mode) else 'not a regular file'
            return self.record('exists', False, 'model.pkl is %s' % kind, False)
        self.bytes = info.st_size
        self.record('exists', True, 'model.pkl found', True)

    def check_min_bytes(self):
        ok = self.bytes >= self.s['min_bytes']
        self.record('min-bytes', ok, '%d bytes %s minimum %d' % (self.bytes, '>=' if ok else '<', self.s['min_bytes']), self.bytes)

    def check_sha256(self):
        with open(self.path, 'rb') as src:
            data = src.read()
        self.bytes = len(data)
        self.sha256 = hashlib.sha256(data).hexdigest()
        # Only keep the bytes for unpickling when they passed the size check (never unpickle a tiny file).
        self.data = data if self.status.get('min-bytes') else None
        self.record('sha256', True, 'computed', self.sha256)

    def check_load(self):
        data = self.data
        if data is None or len(data) < self.s['min_bytes']:
            return self.record('load', False, 'model.pkl changed after the size check', self.bytes)

        def load():
            import joblib
            return joblib.load(io.BytesIO(data))

        started = time.monotonic()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always')
            outcome, value = with_limit(load, self.s['max_seconds'])
        self.pickled_versions = pickled_versions(caught, data)
        elapsed = round(time.monotonic() - started, 4)
        if outcome == 'timeout':
            self.hung = True
            return self.record('load', False, 'load did not finish within %gs' % self.s['max_seconds'], elapsed)
        self.load_seconds = elapsed
        if outcome == 'error':
            return self.record('load', False, describe(value), elapsed)
        self.model = value
        self.record('load', True, 'loaded %s in %.3fs' % (type(value).__name__, elapsed), elapsed)

    def check_has_predict(self):
        predict = getattr(self.model, 'predict', None)
        kind = type(self.model).__name__
        if not callable(predict):
            return self.record('has-predict', False, '%s has no predict method' % kind, kind)
        self.record('has-predict', True, '%s.predict' % kind, kind)

    def check_predict(self):
        import numpy as np
        s = self.s
        raw = np.random.default_rng(s['seed']).normal(size=(s['probe_rows'], s['features']))
        # Python's round gives the double nearest the 6-decimal string the JSON carries.
        self.rows = [[round(float(v), 6) for v in row] for row in raw]
        probe = np.array(self.rows, dtype=np.float64)
        observed = {'features': s['features'], 'rows': s['probe_rows']}
        declared = getattr(self.model, 'n_features_in_', None)
        if isinstance(declared, (int, np.integer)):
            observed['modelFeatures'] = int(declared)
        outcome, value = with_limit(lambda: self.model.predict(probe), s['max_seconds'])
        if outcome == 'timeout':
            self.hung = True
            return self.record('predict', False, 'predict did not finish within %gs' % s['max_seconds'], observed)
        if outcome == 'error':
            return self.record('predict', False, describe(value), observed)
        self.outputs = value
        self.record('predict', True, 'predicted %d rows' % s['probe_rows'], observed)

    def check_output_shape(self):
        import numpy as np
        arr = np.asarray(self.outputs)
        self.outputs = arr
        shape = list(arr.shape)
        rows = self.s['probe_rows']
        want = [rows] if self.s['kind'] == 'label' else [rows, self.s['width']]
        ok = shape == want
        self.record('output-shape', ok, 'shape %s%s' % (shape, '' if ok else ', expected %s' % want), shape)

    def check_output_values(self):
        import numpy as np
        arr = self.outputs
        if self.s['kind'] == 'label':
            values = arr.tolist()
            bad = [v for v in values if not label_allowed(v, self.s['labels'])]
            distinct = []
            for v in values:
                j = label_json(v) if not (isinstance(v, float) and not math.isfinite(v)) else str(v)
                if j not in distinct:
                    distinct.append(j)
            if bad:
                return self.record('output-values', False, '%d of %d values not in %s' % (
                    len(bad), len(values), encode(self.s['labels'])[:80]), distinct[:10])
            self.expected = [label_json(v) for v in values]
            return self.record('output-values', True, 'all values in %s' % encode(self.s['labels'])[:80], distinct[:10])
        if arr.dtype.kind not in 'fiu':
            return self.record('output-values', False, 'outputs are %s, not numbers' % arr.dtype, str(arr.dtype))
        floats = arr.astype(np.float64)
        finite = np.isfinite(floats)
        if not finite.all():
            count = int(floats.size - finite.sum())
            return self.record('output-values', False, '%d of %d outputs are not finite' % (count, floats.size),
                               {'nonFinite': count})
        self.expected = [[round(float(v), 9) for v in row] for row in floats.tolist()]
        self.record('output-values', True, 'all %d outputs finite' % floats.size, {'nonFinite': 0})

    def check_serving_runtime(self):
        serving = self.s['serving_sklearn']
        versions = self.pickled_versions
        self.runtime = {'pickled': versions, 'serving': serving, 'gate': sklearn_version()}
        if not versions:
            return self.record('serving-runtime', True, 'no scikit-learn estimators in the pickle', versions)
        bad = [v for v in versions if minor_of(v) != minor_of(serving)]
        if bad:
            return self.record('serving-runtime', False, 'pickled with scikit-learn %s; the serving runtime has %s '
                               '(pickles load only under the same major.minor)' % (', '.join(bad), serving), versions)
        patch = [v for v in versions if v != serving and len(serving.split('.')) > 2]
        note = '; patch differs (%s), loads' % ', '.join(patch) if patch else ''
        self.record('serving-runtime', True, 'pickled with scikit-learn %s, serving %s%s' % (', '.join(versions), serving, note), versions)

    # ------------------------------------------------------------ baseline

    def check_reference_data(self):
        b = self.s['baseline']
        path = b['reference']
        X, y = load_reference(path, self.s)
        outcome, value = with_limit(lambda: self.model.predict(X), self.s['max_seconds'])
        if outcome == 'timeout':
            self.hung = True
            return self.record('reference-data', False, 'predict on the reference rows did not finish within %gs' % self.s['max_seconds'])
        if outcome == 'error':
            return self.record('reference-data', False, 'candidate on the reference rows: %s' % describe(value))
        predicted = shaped(value, len(X), self.s)
        self.reference = {'X': X, 'y': y, 'candidate': predicted}
        served = find_served(b['root'], b['model'])
        self.served = served
        if served['state'] in ('release', 'archived'):
            outcome, model = with_limit(lambda: load_model(served['path']), self.s['max_seconds'])
            if outcome != 'ok':
                self.hung = self.hung or outcome == 'timeout'
                return self.record('reference-data', False, 'served release %s did not load: %s' % (
                    served['release'], 'timeout' if outcome == 'timeout' else describe(model)))
            outcome, value = with_limit(lambda: model.predict(X), self.s['max_seconds'])
            if outcome != 'ok':
                self.hung = self.hung or outcome == 'timeout'
                return self.record('reference-data', False, 'served release %s on the reference rows: %s' % (
                    served['release'], 'timeout' if outcome == 'timeout' else describe(value)))
            self.reference['served'] = shaped(value, len(X), self.s)
        self.baseline = self.compare()
        self.record('reference-data', True, '%d rows%s; served: %s' % (
            len(X), ' with targets' if y is not None else ' without targets', describe_served(served)),
            {'rows': len(X), 'targets': y is not None})

    def compare(self):
        b, ref, s = self.s['baseline'], self.reference, self.s
        out = {
            'served': {k: v for k, v in self.served.items() if k != 'path'},
            'reference': {'rows': len(ref['X']), 'targets': ref['y'] is not None},
            'trigger': b['trigger'],
            'advisory': b['advisory'],
            'thresholds': {k: b[k] for k in THRESHOLDS},
        }
        if ref['y'] is not None:
            out['candidate'] = metrics(ref['candidate'], ref['y'], s)
        if 'served' in ref:
            if ref['y'] is not None:
                out['servedMetrics'] = metrics(ref['served'], ref['y'], s)
            out['comparison'] = comparison(ref['candidate'], ref['served'], s)
        if 'candidate' in out and 'servedMetrics' in out:
            out['metricChanges'] = metric_changes(out['candidate'], out['servedMetrics'], s['kind'])
        return out

    def skipped_reason(self, metric):
        state = self.served['state']
        if state == 'none':
            return 'skipped: nothing served'
        if state == 'placeholder':
            return 'skipped: the served release %s is a placeholder' % self.served['release']
        if metric and state == 'archived':
            return 'skipped: the served release %s is archived from before the lifecycle (no metrics)' % self.served['release']
        return None

    def decide(self, name, threshold_key, value, passes, text):
        """Record a comparison check: no threshold -> reported only; advisory -> verdict in the message."""
        threshold = self.s['baseline'][threshold_key]
        if threshold is None:
            return self.record(name, True, '%s (no %s set)' % (text, threshold_key), value)
        ok = passes(value, threshold)
        text = '%s, %s %s %s' % (text, threshold_key, 'met' if ok else 'NOT met:', rounded(threshold))
        if not ok and name in self.s['baseline']['advisory']:
            return self.record(name, True, 'advisory: ' + text, value)
        self.record(name, ok, text, value)

    def check_baseline_agreement(self):
        reason = self.skipped_reason(False)
        if reason:
            return self.record('baseline-agreement', True, reason)
        agreement = self.baseline['comparison']['agreement']
        self.decide('baseline-agreement', 'minAgreement', agreement, lambda v, t: v >= t,
                    'labels agree on %.4g of rows' % agreement)

    def check_baseline_rate(self):
        reason = self.skipped_reason(False)
        if reason:
            return self.record('baseline-rate', True, reason)
        c = self.baseline['comparison']
        self.decide('baseline-rate', 'maxRateChange', abs(c['rateChange']), lambda v, t: v <= t,
                    'anomaly rate %.4g -> %.4g' % (c['servedRate'], c['candidateRate']))

    def check_baseline_change(self):
        reason = self.skipped_reason(False)
        if reason:
            return self.record('baseline-change', True, reason)
        rel = self.baseline['comparison']['relativeChange']
        worst = max(range(len(rel)), key=lambda j: rel[j])
        self.decide('baseline-change', 'maxRelativeChange', rel[worst], lambda v, t: v <= t,
                    'output %d changes by %.4g (relative)' % (worst, rel[worst]))

    def check_baseline_metrics(self):
        reason = self.skipped_reason(True)
        if reason:
            return self.record('baseline-metrics', True, reason)
        threshold = self.s['baseline']['maxMetricRegression']
        changes = self.baseline.get('metricChanges')
        if changes is None:
            if threshold is None:
                return self.record('baseline-metrics', True, 'not compared: the reference data has no targets')
            return self.record('baseline-metrics', False, 'no targets in the reference data: metric regression cannot be checked')
        name, worst = worst_regression(changes)
        self.decide('baseline-metrics', 'maxMetricRegression', worst, lambda v, t: v <= t,
                    'worst regression %s %.4g' % (name, worst))

    def result(self):
        ok = len(self.checks) == len(self.names) and all(c['ok'] for c in self.checks)
        core_ok = all(self.status.get(name) for name in CHECK_NAMES)
        extra = {}
        if self.runtime is not None:
            extra['runtime'] = self.runtime
        if self.s.get('baseline'):
            extra['baseline'] = self.baseline if self.baseline is not None else {'skipped': 'no comparison: %s' % next(
                (c['message'] for c in self.checks if c['name'] == 'reference-data'), 'not run')}
        if self.notebook_metrics is not None:
            extra['notebookMetrics'] = self.notebook_metrics
        return dict(extra, **{
            'ok': ok,
            'checks': self.checks,
            'bytes': self.bytes,
            'sha256': self.sha256,
            'loadSeconds': self.load_seconds,
            # Rows without verified outputs would be probes nobody can compare against. A failed serving-runtime
            # or baseline check does not make the probe outputs wrong, so they are kept for the record.
            'probe': {'rows': self.rows if core_ok else [], 'expected': self.expected if core_ok else []},
            'python': platform.python_version(),
            'sklearn': sklearn_version(),
        })


def main():
    try:
        settings = read_settings(os.environ)
    except UsageError as err:
        emit({'ok': False, 'error': 'usage: %s' % err, 'checks': [],
              'python': platform.python_version(), 'sklearn': sklearn_version()})
        return 2
    gate = Gate(settings)
    emit(gate.run())
    if gate.hung:
        # A thread is stuck inside the model's code; interpreter shutdown would wait on its locks.
        os._exit(0)
    return 0


if __name__ == '__main__':
    sys.exit(main())
