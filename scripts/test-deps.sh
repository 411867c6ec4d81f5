#!/usr/bin/env bash
# What the test suite needs beyond npm: Debian's python3-sklearn (the real gate/copy/promote scripts and the
# simulated notebook), lua5.1 (Argo CD health scripts as gopher-lua runs them), kubectl (the real client against
# the emulator) and promtool (Prometheus rule tests). Installs only what is missing, says what it installs, and
# fails loudly when it cannot (tests that need a tool never skip).
set -euo pipefail

need=()
/usr/bin/python3 -c 'import sklearn, joblib, numpy' 2>/dev/null || need+=(python3-sklearn)
command -v lua5.1 >/dev/null || need+=(lua5.1)
command -v kubectl >/dev/null || need+=(kubernetes-client)
command -v promtool >/dev/null || need+=(prometheus)

if [ ${#need[@]} -eq 0 ]; then
  echo "test-deps: python3-sklearn, lua5.1, kubectl, promtool present"
  exit 0
fi
echo "test-deps: installing ${need[*]} (Debian packages)"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then SUDO="sudo -n"
  else echo "test-deps: need root or passwordless sudo to install: ${need[*]}" >&2; exit 1; fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# prometheus' maintainer scripts want to start a service; a policy-rc.d answering 101 keeps them from doing it
# (the Debian way in containers and CI). Only a policy we put there is removed again.
policy=/usr/sbin/policy-rc.d
placed=""
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null && $SUDO chmod 755 "$policy" && placed=1
fi
status=0
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null || status=$?
if [ -n "$placed" ]; then $SUDO rm -f "$policy"; fi
if [ "$status" -ne 0 ]; then echo "test-deps: apt-get install failed ($status): ${need[*]}" >&2; exit "$status"; fi
echo "test-deps: installed ${need[*]}"
