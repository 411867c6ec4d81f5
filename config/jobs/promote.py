#!/usr/bin/env python3
"""Promote a staged model into the serving path, or roll back to a kept release (the `<run>-promote` Job).

Environment:
  ROOT             mount path of the shared PVC (absolute), e.g. /mnt/models
  MODEL            model name, a DNS-1123 label
  RUN              the release to serve (a run name, DNS-1123 label)
  SOURCE           "staging": promote .runs/<run>/<model>/model.pkl (a gated run);
                   "release": serve the kept .releases/<model>/<run>/model.pkl again (rollback)
  KEEP             releases to keep per model, int >= 1 (default 5)
  STAGED           optional: the staged model's path relative to ROOT when it is not .runs/<run>/<model>/model.pkl
                   (a notebook validated outside model-lifecycle); relative, no "..", ends in .pkl
  UPLOAD_URL       optional: a presigned S3 PUT URL for <prefix>/<model>/releases/<run>/model.pkl (a model served
                   from a bucket, docs/storage.md): the verified release file is PUT there BEFORE anything on the
                   volume changes; a refused or failed PUT fails the promotion. The Job holds no credentials.
  TERMINATION_LOG  where the result JSON goes (default /dev/termination-log); it is also printed on stdout

Layout on the PVC:
  <model>/model.pkl                     what the predictor loads (replaced by an atomic rename only)
  <model>/RELEASE                       the run name of the served release
  <model>/PREVIOUS_RELEASE              the release RELEASE named before the last change (lets a re-run
                                        of the same promotion report the same previousRelease)
  .releases/<model>/pre-lifecycle-<sha12>/  the model that was served before the first promotion (no RELEASE
                                        file): archived before anything overwrites it, release.json
                                        {"archived": true}, so verification can roll back to it
  .releases/<model>/<run>/model.pkl     kept releases, with release.json {run, sha256, bytes, promotedAt}

Steps (staging): copy the staged file into the release folder (temp name, fsync, rename; skipped when the
same sha256 is already there) and write release.json (kept as is when it already records that sha256).
Both sources then: verify the release file against release.json, read <model>/RELEASE (the previous
release), copy the release to <model>/model.pkl.tmp-<run>, fsync, rename over <model>/model.pkl, write
RELEASE atomically, and prune .releases/<model>/ to the newest KEEP by promotedAt, never pruning the served
or the previous release. Every step is idempotent, so a re-run after a crash finishes the job.

Result: {"ok", "release", "previousRelease": str|null, "sha256", "bytes", "servedPath": "<model>/model.pkl",
         "kept": [...], "pruned": [...], "archived"?: the pre-lifecycle release made by this run, "error"?, "truncated"?}
Exit code 0 when the promotion was attempted (the verdict is in "ok"), 2 on a usage error.

Usage:  ROOT=/mnt/models MODEL=anomaly-detector RUN=r1 SOURCE=staging python3 promote.py
"""
import os
import sys

# The scripts share one mounted folder and copy.py would shadow the standard library's `copy` module:
# never import from the script's own folder.
if sys.path and sys.path[0] and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    del sys.path[0]

import importlib.util

_common_spec = importlib.util.spec_from_file_location('mlops_jobs_common', os.path.join(os.path.dirname(os.path.abspath(__file__)), 'jobs_common.py'))
common = importlib.util.module_from_spec(_common_spec)
_common_spec.loader.exec_module(common)
UsageError = common.UsageError

import datetime
import hashlib
import json
import re
import shutil
import stat

MAX_RESULT_BYTES = common.MAX_RESULT_BYTES
CHUNK = 1024 * 1024
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


class PromoteError(Exception):
    pass


# ---------------------------------------------------------------- result

encode = common.encode
size_of = common.size_of
fsync_dir = common.fsync_dir
make_dirs = common.make_dirs
dns_label = common.dns_label
DNS1123_LABEL = common.DNS1123_LABEL


def emit(result):
    """Write the result to the termination log and stdout, shrunk to fit the 4 KiB termination message."""
    common.write_result(fit(result))


def fit(result):
    if size_of(result) <= MAX_RESULT_BYTES:
        return encode(result)
    shrunk = dict(result, truncated=True)
    if isinstance(shrunk.get('error'), str):
        shrunk['error'] = shrunk['error'][:512]
    for key in ('pruned', 'kept'):
        items = list(shrunk.get(key) or [])
        while items and size_of(dict(shrunk, **{key: items})) > MAX_RESULT_BYTES:
            items.pop()
        shrunk[key] = items
    return encode(shrunk)


# ---------------------------------------------------------------- environment


def read_settings(env):
    root = env.get('ROOT') or ''
    if not root:
        raise UsageError('ROOT is required')
    if not os.path.isabs(root) or '..' in root.split('/'):
        raise UsageError('ROOT must be an absolute path without ".." (got %r)' % root[:200])
    if not os.path.isdir(root):
        raise UsageError('ROOT is not a directory: %s' % root[:200])
    source = env.get('SOURCE', '')
    if source not in ('staging', 'release'):
        raise UsageError('SOURCE must be "staging" or "release" (got %r)' % source[:40])
    keep_raw = (env.get('KEEP') or '5').strip()
    if not re.match(r'^[0-9]{1,4}$', keep_raw) or int(keep_raw) < 1:
        raise UsageError('KEEP must be an integer >= 1 (got %r)' % keep_raw[:40])
    model, run = dns_label('MODEL', env.get('MODEL')), dns_label('RUN', env.get('RUN'))
    staged = env.get('STAGED') or '.runs/%s/%s/model.pkl' % (run, model)
    parts = staged.split('/')
    if staged.startswith('/') or '..' in parts or '' in parts or not staged.endswith('.pkl') or len(staged) > 512 \
            or not re.match(r'^[A-Za-z0-9._/-]+$', staged):
        raise UsageError('STAGED must be a relative path without ".." ending in .pkl (got %r)' % staged[:200])
    upload_url = (env.get('UPLOAD_URL') or '').strip()
    if upload_url and not re.match(r'^https?://', upload_url):
        raise UsageError('UPLOAD_URL must be an http(s) URL')
    return {'root': root, 'model': model, 'run': run, 'source': source, 'keep': int(keep_raw), 'staged': parts, 'upload_url': upload_url}


# ---------------------------------------------------------------- files

def inside(root, *parts):
    """root/parts, refused when any component below root is a symlink."""
    path = os.path.join(root, *parts)
    if os.path.realpath(path) != os.path.join(os.path.realpath(root), *parts):
        raise PromoteError('symlink in path %s' % '/'.join(parts))
    return path


def regular_file(path):
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except FileNotFoundError:
        return False


def sha256_file(path):
    digest = hashlib.sha256()
    size = 0
    with open(path, 'rb') as src:
        for chunk in iter(lambda: src.read(CHUNK), b''):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def copy_atomic(src, dst, temp_name, want_sha):
    """Copy src to dst through temp_name in dst's folder; the temp copy must hash to want_sha."""
    folder = os.path.dirname(dst)
    make_dirs(folder)
    temp = os.path.join(folder, temp_name)
    digest = hashlib.sha256()
    with open(src, 'rb') as inp, open(temp, 'wb') as out:
        for chunk in iter(lambda: inp.read(CHUNK), b''):
            digest.update(chunk)
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    if digest.hexdigest() != want_sha or sha256_file(temp)[0] != want_sha:
        os.unlink(temp)
        raise PromoteError('sha256 of %s changed while copying' % os.path.basename(src))
    os.replace(temp, dst)
    fsync_dir(folder)


def write_atomic(path, text):
    folder = os.path.dirname(path)
    make_dirs(folder)
    temp = path + '.tmp'
    with open(temp, 'w', encoding='utf-8') as out:
        out.write(text)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temp, path)
    fsync_dir(folder)


def read_release_name(path):
    """A run name from RELEASE / PREVIOUS_RELEASE; anything else counts as unknown (None)."""
    try:
        with open(path, encoding='utf-8') as src:
            name = src.read(256).strip()
    except (FileNotFoundError, IsADirectoryError, UnicodeDecodeError):
        return None
    return name if name and len(name) <= 63 and DNS1123_LABEL.match(name) else None


def read_release_json(folder):
    try:
        with open(os.path.join(folder, 'release.json'), encoding='utf-8') as src:
            data = json.load(src)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def now_iso():
    return datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%S.%fZ')


def parse_time(value):
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.datetime.fromisoformat(value.replace('Z', '+00:00'))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.timezone.utc)


# ---------------------------------------------------------------- steps

def stage_release(root, model, run, release_dir, staged_parts):
    """Copy the staged model into its release folder and record release.json; returns (sha, bytes)."""
    staged = inside(root, *staged_parts)
    if not regular_file(staged):
        raise PromoteError('staged model missing: %s' % '/'.join(staged_parts))
    sha, size = sha256_file(staged)
    for leftover in ('.model.pkl.tmp-promote', 'release.json.tmp'):
        if os.path.lexists(os.path.join(release_dir, leftover)):
            os.unlink(os.path.join(release_dir, leftover))
    kept = os.path.join(release_dir, 'model.pkl')
    if not (regular_file(kept) and sha256_file(kept)[0] == sha):
        copy_atomic(staged, kept, '.model.pkl.tmp-promote', sha)
    info = read_release_json(release_dir)
    # A re-run keeps the first promotedAt, so pruning order does not change on retries.
    if not (info and info.get('sha256') == sha and info.get('run') == run and parse_time(info.get('promotedAt'))):
        record = {'run': run, 'sha256': sha, 'bytes': size, 'promotedAt': now_iso()}
        write_atomic(os.path.join(release_dir, 'release.json'), encode(record) + '\n')
    return sha, size


def verify_release(model, run, release_dir):
    """The kept release must exist and match its own record: never serve a file we cannot vouch for."""
    kept = os.path.join(release_dir, 'model.pkl')
    if not regular_file(kept):
        raise PromoteError('release missing: .releases/%s/%s/model.pkl' % (model, run))
    info = read_release_json(release_dir)
    if not info or not isinstance(info.get('sha256'), str):
        raise PromoteError('release.json missing or invalid in .releases/%s/%s' % (model, run))
    sha, size = sha256_file(kept)
    if sha != info['sha256']:
        raise PromoteError('release .releases/%s/%s is corrupt: sha256 %s, release.json says %s' % (
            model, run, sha, info['sha256']))
    return sha, size


def archive_unrecorded(root, model, served, served_dir):
    """The model served before the first promotion (no RELEASE file: a platform that predates us) becomes a kept
    release, `pre-lifecycle-<sha256[:12]>`, marked archived, so a failed verification can roll back to it."""
    sha, size = sha256_file(served)
    name = 'pre-lifecycle-' + sha[:12]
    folder = inside(root, '.releases', model, name)
    kept = os.path.join(folder, 'model.pkl')
    if not (regular_file(kept) and sha256_file(kept)[0] == sha):
        copy_atomic(served, kept, '.model.pkl.tmp-archive', sha)
    info = read_release_json(folder)
    if not (info and info.get('sha256') == sha):
        mtime = datetime.datetime.fromtimestamp(os.stat(served).st_mtime, datetime.timezone.utc)
        record = {'run': name, 'sha256': sha, 'bytes': size, 'promotedAt': mtime.strftime('%Y-%m-%dT%H:%M:%S.%fZ'),
                  'archived': True, 'note': 'served before model-lifecycle managed %s; not trained or gated by it' % model}
        write_atomic(os.path.join(folder, 'release.json'), encode(record) + '\n')
    return name


def serve(root, model, run, release_dir, sha):
    """Replace <model>/model.pkl by the release; returns (previous release or None, archived release or None)."""
    served_dir = inside(root, model)
    make_dirs(served_dir)
    current = read_release_name(os.path.join(served_dir, 'RELEASE'))
    previous_file = os.path.join(served_dir, 'PREVIOUS_RELEASE')
    served = inside(root, model, 'model.pkl')
    archived = None
    if current == run:
        # Re-run of a promotion that already switched RELEASE: report what it replaced back then.
        previous = read_release_name(previous_file)
    elif current is None and regular_file(served) and sha256_file(served)[0] != sha:
        # First promotion over a model we did not put there: archive it BEFORE anything overwrites it, and
        # record it as the previous release first, so a re-run after a crash still knows what was replaced.
        previous = archived = archive_unrecorded(root, model, served, served_dir)
        write_atomic(previous_file, previous + '\n')
    elif current is None:
        # Nothing served, or our own copy already in place from a run that stopped before writing RELEASE.
        previous = read_release_name(previous_file) if regular_file(served) else None
        if previous is None and os.path.lexists(previous_file):
            os.unlink(previous_file)
            fsync_dir(served_dir)
    else:
        previous = current
        write_atomic(previous_file, previous + '\n')
    if not (regular_file(served) and sha256_file(served)[0] == sha):
        copy_atomic(os.path.join(release_dir, 'model.pkl'), served, 'model.pkl.tmp-' + run, sha)
    write_atomic(os.path.join(served_dir, 'RELEASE'), run + '\n')
    # Temp files of crashed promotions of any release: the lock guarantees none is in progress.
    leftovers = [n for n in os.listdir(served_dir) if n.startswith('model.pkl.tmp-') or n.endswith('.tmp')]
    for name in leftovers:
        os.unlink(os.path.join(served_dir, name))
    if leftovers:
        fsync_dir(served_dir)
    return previous, archived


def prune(releases_dir, keep, protected):
    """Keep the newest `keep` releases by promotedAt plus the protected ones; remove the rest."""
    entries = []
    for name in os.listdir(releases_dir):
        path = os.path.join(releases_dir, name)
        # Only folders we could have written: never follow a link or touch a foreign name.
        if not DNS1123_LABEL.match(name) or len(name) > 63 or os.path.islink(path) or not os.path.isdir(path):
            continue
        info = read_release_json(path) or {}
        when = parse_time(info.get('promotedAt'))
        if when is None:
            when = datetime.datetime.fromtimestamp(os.stat(path).st_mtime, datetime.timezone.utc)
        entries.append((when, name))
    entries.sort(reverse=True)
    newest = {name for _, name in entries[:keep]}
    kept, pruned = [], []
    for _, name in entries:
        if name in newest or name in protected:
            kept.append(name)
        else:
            shutil.rmtree(os.path.join(releases_dir, name))
            pruned.append(name)
    if pruned:
        fsync_dir(releases_dir)
    return kept, pruned


def upload(url, path, size):
    """PUT the release file to the presigned URL; the function checks the object's sha256 afterwards."""
    import urllib.request
    import urllib.error
    with open(path, 'rb') as f:
        req = urllib.request.Request(url, data=f, method='PUT', headers={'Content-Length': str(size), 'Content-Type': 'application/octet-stream'})
        try:
            with urllib.request.urlopen(req, timeout=120) as resp:
                status = resp.status
        except urllib.error.HTTPError as err:
            raise PromoteError('upload to the bucket refused: HTTP %d' % err.code)
        except (urllib.error.URLError, OSError) as err:
            raise PromoteError('upload to the bucket failed: %s' % str(getattr(err, 'reason', err))[:200])
    if status // 100 != 2:
        raise PromoteError('upload to the bucket answered HTTP %d' % status)
    return {'bytes': size}


def promote(settings):
    root, model, run = settings['root'], settings['model'], settings['run']
    result = {'ok': False, 'release': run, 'previousRelease': None, 'sha256': None, 'bytes': None,
              'servedPath': '%s/model.pkl' % model, 'kept': [], 'pruned': []}
    try:
        release_dir = inside(root, '.releases', model, run)
        if settings['source'] == 'staging':
            stage_release(root, model, run, release_dir, settings['staged'])
        sha, size = verify_release(model, run, release_dir)
        result['sha256'], result['bytes'] = sha, size
        if settings.get('upload_url'):
            result['uploaded'] = upload(settings['upload_url'], os.path.join(release_dir, 'model.pkl'), size)
        previous, archived = serve(root, model, run, release_dir, sha)
        result['previousRelease'] = previous
        if archived:
            result['archived'] = archived
        protected = {run} | ({previous} if previous else set())
        result['kept'], result['pruned'] = prune(inside(root, '.releases', model), settings['keep'], protected)
    except (PromoteError, OSError) as err:
        result['error'] = str(err)
        return result
    result['ok'] = True
    return result


def main():
    try:
        settings = read_settings(os.environ)
    except UsageError as err:
        emit({'ok': False, 'error': 'usage: %s' % err})
        return 2
    emit(promote(settings))
    return 0


if __name__ == '__main__':
    sys.exit(main())
