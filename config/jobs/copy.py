#!/usr/bin/env python3
"""Copy a trained model's staging folder from the GPU PVC to the shared PVC (the `<run>-copy` Job).

Environment:
  SRC_ROOT         mount path of the GPU PVC (absolute), e.g. /mnt/gpu
  DST_ROOT         mount path of the shared PVC (absolute), e.g. /mnt/models
  RUN              run (ModelRun) name, a DNS-1123 label
  MODEL            model name, a DNS-1123 label
  TERMINATION_LOG  where the result JSON goes (default /dev/termination-log); it is also printed on stdout

Copies every regular file of SRC_ROOT/.runs/<run>/<model>/ (recursively) into DST_ROOT/.runs/<run>/<model>/. Each file goes through a temporary name in its destination folder,
is fsynced, renamed, and its folder fsynced; the sha256 of the bytes read from the source is compared with
the sha256 of the destination read back from disk. A file already at the destination with the same
sha256 is kept as is, and temporary leftovers of a crashed run are removed, so re-running gives the same
result. A symlink or other non-regular entry in the source fails the copy (a notebook could plant a link
to files of the Job's own container).

Result (one JSON object, at most 4096 bytes):
  {"ok": bool, "files": [{"name", "bytes", "sha256"}], "bytes": total, "sha256": <of model.pkl>,
   "path": ".runs/<run>/<model>", "error"?: str, "truncated"?: true}

Exit code 0 when the copy was attempted (the verdict is in "ok"), 2 on a usage error (bad environment).

Usage:  SRC_ROOT=/mnt/gpu DST_ROOT=/mnt/models RUN=r1 MODEL=anomaly-detector python3 copy.py
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
import json
import re

MAX_RESULT_BYTES = common.MAX_RESULT_BYTES
TEMP_SUFFIX = '.tmp-copy'
CHUNK = 1024 * 1024


encode = common.encode
fsync_dir = common.fsync_dir
make_dirs = common.make_dirs
dns_label = common.dns_label


def emit(result):
    """Write the result to the termination log and stdout, shrunk to fit the 4 KiB termination message."""
    common.write_result(fit(result))


def fit(result):
    text = encode(result)
    if len(text.encode('utf-8')) <= MAX_RESULT_BYTES:
        return text
    shrunk = dict(result)
    shrunk['truncated'] = True
    if isinstance(shrunk.get('error'), str):
        shrunk['error'] = shrunk['error'][:512]
    items = list(shrunk.get('files') or [])
    # Keep model.pkl's entry first so the evidence that matters survives truncation.
    items.sort(key=lambda f: 0 if isinstance(f, dict) and f.get('name') == 'model.pkl' else 1)
    while items and len(encode(dict(shrunk, files=items)).encode('utf-8')) > MAX_RESULT_BYTES:
        items.pop()
    shrunk['files'] = items
    text = encode(shrunk)
    if len(text.encode('utf-8')) <= MAX_RESULT_BYTES:
        return text
    minimal = {k: shrunk.get(k) for k in ('ok', 'bytes', 'sha256', 'path')}
    minimal['truncated'] = True
    minimal['error'] = str(shrunk.get('error') or 'result too large')[:512]
    return encode(minimal)


def mount_root(name, value):
    if not value:
        raise UsageError('%s is required' % name)
    if not os.path.isabs(value) or '..' in value.split('/'):
        raise UsageError('%s must be an absolute path without ".." (got %r)' % (name, value[:200]))
    if not os.path.isdir(value):
        raise UsageError('%s is not a directory: %s' % (name, value[:200]))
    return value


def inside(root, *parts):
    """root/parts, refused when any component below root is a symlink (a notebook could plant one)."""
    path = os.path.join(root, *parts)
    if os.path.realpath(path) != os.path.join(os.path.realpath(root), *parts):
        raise ValueError('symlink in path %s' % '/'.join(parts))
    return path


def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, 'rb') as src:
        for chunk in iter(lambda: src.read(CHUNK), b''):
            digest.update(chunk)
    return digest.hexdigest()


def list_source(src_dir):
    """Regular files under src_dir as sorted relative paths, plus the entries that are not (symlinks, ...)."""
    files, skipped = [], []
    for folder, dirs, names in os.walk(src_dir, followlinks=False):
        for d in list(dirs):
            if os.path.islink(os.path.join(folder, d)):
                skipped.append(os.path.relpath(os.path.join(folder, d), src_dir))
                dirs.remove(d)
        for name in names:
            full = os.path.join(folder, name)
            rel = os.path.relpath(full, src_dir)
            if name.endswith(TEMP_SUFFIX):
                continue
            if os.path.islink(full) or not os.path.isfile(full):
                skipped.append(rel)
            else:
                files.append(rel)
    files.sort()
    skipped.sort()
    return files, skipped


def remove_leftovers(dst_dir):
    """Temporary files of an earlier, crashed run; they are never a valid result."""
    removed = []
    for folder, _dirs, names in os.walk(dst_dir, followlinks=False):
        for name in names:
            if name.endswith(TEMP_SUFFIX):
                os.unlink(os.path.join(folder, name))
                removed.append(os.path.relpath(os.path.join(folder, name), dst_dir))
        if removed:
            fsync_dir(folder)
    return removed


def copy_one(src_path, dst_path):
    """Copy through a temp name; returns (bytes, sha256). Raises when the destination does not verify."""
    folder = os.path.dirname(dst_path)
    make_dirs(folder)
    if os.path.isfile(dst_path) and not os.path.islink(dst_path):
        src_sha = sha256_file(src_path)
        if sha256_file(dst_path) == src_sha:
            return os.path.getsize(dst_path), src_sha
    temp = os.path.join(folder, '.' + os.path.basename(dst_path) + TEMP_SUFFIX)
    digest = hashlib.sha256()
    size = 0
    with open(src_path, 'rb') as src, open(temp, 'wb') as dst:
        for chunk in iter(lambda: src.read(CHUNK), b''):
            digest.update(chunk)
            dst.write(chunk)
            size += len(chunk)
        dst.flush()
        os.fsync(dst.fileno())
    src_sha = digest.hexdigest()
    dst_sha = sha256_file(temp)
    if dst_sha != src_sha:
        os.unlink(temp)
        raise ValueError('sha256 mismatch for %s: source %s, destination %s' % (os.path.basename(dst_path), src_sha, dst_sha))
    os.replace(temp, dst_path)
    fsync_dir(folder)
    return size, src_sha


def run(env):
    src_root = mount_root('SRC_ROOT', env.get('SRC_ROOT'))
    dst_root = mount_root('DST_ROOT', env.get('DST_ROOT'))
    run_name = dns_label('RUN', env.get('RUN'))
    model = dns_label('MODEL', env.get('MODEL'))
    rel = '.runs/%s/%s' % (run_name, model)
    result = {'ok': False, 'files': [], 'bytes': 0, 'sha256': None, 'path': rel}
    try:
        src_dir = inside(src_root, '.runs', run_name, model)
        dst_dir = inside(dst_root, '.runs', run_name, model)
    except ValueError as err:
        result['error'] = str(err)
        return result
    if not os.path.isdir(src_dir):
        result['error'] = 'source directory missing: %s' % rel
        return result
    files, skipped = list_source(src_dir)
    if skipped:
        result['error'] = 'not a regular file in source: %s' % ', '.join(skipped)[:512]
        return result
    if 'model.pkl' not in files:
        result['error'] = 'model.pkl missing in source %s' % rel
        return result
    try:
        make_dirs(dst_dir)
        inside(dst_root, '.runs', run_name, model)
        remove_leftovers(dst_dir)
        for name in files:
            size, sha = copy_one(os.path.join(src_dir, name), inside(dst_dir, name))
            result['files'].append({'name': name, 'bytes': size, 'sha256': sha})
            result['bytes'] += size
            if name == 'model.pkl':
                result['sha256'] = sha
        # Destination verified once more after every rename: what a later step reads is what we hashed.
        for entry in result['files']:
            if sha256_file(os.path.join(dst_dir, entry['name'])) != entry['sha256']:
                raise ValueError('sha256 of destination %s changed after rename' % entry['name'])
    except (OSError, ValueError) as err:
        result['error'] = str(err)
        return result
    result['ok'] = True
    return result


def main():
    try:
        result = run(os.environ)
    except UsageError as err:
        emit({'ok': False, 'error': 'usage: %s' % err})
        return 2
    emit(result)
    return 0


if __name__ == '__main__':
    sys.exit(main())
