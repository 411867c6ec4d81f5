#!/bin/sh
# Argo CD PreSync gate: wait until every NotebookValidationJob in sync wave $WAVE carries
# mlops.dev/wave-complete=true (argocd-sync writes it when the NVJ succeeds); exit 1 as soon as one
# carries mlops.dev/wave-failed=true, or when $TIMEOUT_SECONDS pass. Needs only kubectl and a POSIX sh.
set -u
KUBECTL="${KUBECTL:-kubectl}"
WAVE="${WAVE:-}"
TIMEOUT_SECONDS="${TIMEOUT_SECONDS:-3600}"
INTERVAL_SECONDS="${INTERVAL_SECONDS:-10}"
# At least this many NVJs must be in the wave: an empty wave usually means it has not been created yet.
MIN_JOBS="${MIN_JOBS:-1}"
case "$WAVE" in
  ''|*[!0-9-]*) echo "wait-for-wave: WAVE must be a sync-wave number (from mlops.dev/block-wave), got '$WAVE'" >&2; exit 2 ;;
esac
ns_args=""
if [ -n "${NAMESPACE:-}" ]; then ns_args="--namespace=$NAMESPACE"; fi
start="$(date +%s)"
while :; do
    # kubectl pages the list itself (--chunk-size). One line per NVJ: name|wave|complete|failed ("|" keeps empty
    # fields; a whitespace IFS would merge them).
  if out="$("$KUBECTL" get notebookvalidationjobs.mlops.mlops.dev $ns_args --chunk-size=500 -o \
    'jsonpath={range .items[*]}{.metadata.name}{"|"}{.metadata.annotations.argocd\.argoproj\.io/sync-wave}{"|"}{.metadata.annotations.mlops\.dev/wave-complete}{"|"}{.metadata.annotations.mlops\.dev/wave-failed}{"\n"}{end}' 2>&1)"; then
    total=0; complete=0; failed=""; pending=""
    while IFS="|" read -r name wave done bad; do
      [ -n "$name" ] || continue
      [ "$wave" = "$WAVE" ] || continue
      total=$((total + 1))
      if [ "$bad" = "true" ]; then failed="$failed $name"
      elif [ "$done" = "true" ]; then complete=$((complete + 1))
      else pending="$pending $name"; fi
    done <<LIST
$out
LIST
    if [ -n "$failed" ]; then
      echo "wave $WAVE failed:$failed"
      exit 1
    fi
    if [ "$total" -ge "$MIN_JOBS" ] && [ "$complete" -eq "$total" ]; then
      echo "wave $WAVE complete: $complete of $total notebook validation jobs"
      exit 0
    fi
    echo "wave $WAVE: $complete of $total complete; waiting for:${pending:- (no jobs yet)}"
  else
    # A transient API error is not a verdict: keep polling until the deadline.
    echo "wave $WAVE: kubectl failed, retrying: $out" >&2
  fi
  now="$(date +%s)"
  # whole seconds: "greater than" guarantees at least TIMEOUT_SECONDS really passed
  if [ $((now - start)) -gt "$TIMEOUT_SECONDS" ]; then
    echo "wave $WAVE: timed out after ${TIMEOUT_SECONDS}s"
    exit 1
  fi
  sleep "$INTERVAL_SECONDS"
done
