#!/usr/bin/env bash
# Installs the third-party benchmark client the simulator's interoperability test drives.
#
# Creates a virtualenv at ${PERFSANITY_PYVENV:-/opt/perfsanity-venv} and pip-installs a pinned
# AIPerf (NVIDIA's OpenAI-compatible load generator). Idempotent: a venv that already has the
# pinned version is left alone. Needs only PyPI.
set -euo pipefail

AIPERF_VERSION="0.13.0"
VENV="${PERFSANITY_PYVENV:-/opt/perfsanity-venv}"
PYTHON="${PYTHON:-python3}"

if [ -x "$VENV/bin/aiperf" ] && "$VENV/bin/python" -m pip show aiperf 2>/dev/null | grep -qx "Version: $AIPERF_VERSION"; then
    echo "install-python-tools: aiperf $AIPERF_VERSION already in $VENV"
    exit 0
fi

start=$(date +%s)
"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet "aiperf==$AIPERF_VERSION"
"$VENV/bin/aiperf" --version >/dev/null 2>&1 || "$VENV/bin/aiperf" --help >/dev/null
echo "install-python-tools: aiperf $AIPERF_VERSION installed in $VENV in $(( $(date +%s) - start )) s"
