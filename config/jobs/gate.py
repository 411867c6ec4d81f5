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

Checks, in this order: exists, min-bytes, sha256, load, has-predict, predict, output-shape, output-values.
Each is {"name", "ok", "message", "observed"}. A check whose prerequisite failed is reported failed with
message "skipped: <prerequisite> failed" (missing evidence is a fail). Prerequisites: min-bytes and sha256
need exists; load needs min-bytes and sha256; each later check needs the one before it. Nothing is imported
or unpickled before exists and min-bytes pass, and the bytes unpickled are the bytes hashed.

Probe rows are default_rng(SEED).normal(size=(PROBE_ROWS, FEATURES)) rounded to 6 decimals, and the model
predicts ON the rounded rows, so anyone sending the reported rows to the endpoint gets the same outputs.
Expected outputs: labels as JSON ints (or strings), regression floats rounded to 9 digits. When the
result would exceed 4096 bytes, trailing probe rows (and their expected outputs) are left out and
"truncated": true is set. Probe rows and expected outputs are empty unless every check passed (rows
without verified outputs are nothing an endpoint check could compare against). With very wide inputs
(several hundred features) not even one row fits and both lists are empty.

Result: {"ok": every check ok, "checks": [...], "bytes", "sha256", "loadSeconds",
         "probe": {"rows": [[...]], "expected": [...]}, "python", "sklearn", "truncated"?, "error"?}
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
}
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
    return settings


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

    def record(self, name, ok, message, observed=None):
        self.status[name] = ok
        self.checks.append({'name': name, 'ok': bool(ok), 'message': short(message), 'observed': observed})

    def run(self):
        for name in CHECK_NAMES:
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
        outcome, value = with_limit(load, self.s['max_seconds'])
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

    def result(self):
        ok = len(self.checks) == len(CHECK_NAMES) and all(c['ok'] for c in self.checks)
        return {
            'ok': ok,
            'checks': self.checks,
            'bytes': self.bytes,
            'sha256': self.sha256,
            'loadSeconds': self.load_seconds,
            # Rows without verified outputs would be probes nobody can compare against.
            'probe': {'rows': self.rows if ok else [], 'expected': self.expected if ok else []},
            'python': platform.python_version(),
            'sklearn': sklearn_version(),
        }


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
