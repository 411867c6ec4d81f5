"""Helpers shared by the step Job scripts (copy.py, gate.py, promote.py); standard library only.

Loaded by file path (the scripts drop their own folder from sys.path so copy.py cannot shadow the standard
library's `copy` module), and mounted with them from the scripts ConfigMap.
"""
import json
import os
import re
import sys

MAX_RESULT_BYTES = 4096
DNS1123_LABEL = re.compile(r'^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')


class UsageError(Exception):
    pass


def encode(obj, allow_nan=True):
    return json.dumps(obj, separators=(',', ':'), ensure_ascii=False, allow_nan=allow_nan)


def size_of(obj):
    return len(encode(obj).encode('utf-8'))


def write_result(text):
    """The result JSON to the termination log (what the function reads) and to stdout (the pod log)."""
    path = os.environ.get('TERMINATION_LOG', '/dev/termination-log')
    try:
        with open(path, 'w', encoding='utf-8') as out:
            out.write(text)
    except OSError as err:
        sys.stderr.write('cannot write termination log %s: %s\n' % (path, err))
    sys.stdout.write(text + '\n')
    sys.stdout.flush()


def dns_label(name, value):
    if value is None or value == '':
        raise UsageError('%s is required' % name)
    if len(value) > 63 or not DNS1123_LABEL.match(value):
        raise UsageError('%s must be a DNS-1123 label (got %r)' % (name, value[:80]))
    return value


def fsync_dir(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_dirs(path):
    """mkdir -p that fsyncs each parent it adds an entry to, so the new folders survive a crash."""
    missing = []
    while not os.path.isdir(path):
        missing.append(path)
        path = os.path.dirname(path)
    for folder in reversed(missing):
        try:
            os.mkdir(folder)
        except FileExistsError:
            pass
        fsync_dir(os.path.dirname(folder))
