#!/usr/bin/env bash
# Installs the Python tools tests drive: the third-party benchmark client of the simulator's
# interoperability test, and PyYAML, which tests/yaml_pyyaml.rs reads every written YAML file with.
#
# Creates a virtualenv at ${PERFSANITY_PYVENV:-/opt/perfsanity-venv} and pip-installs a pinned
# AIPerf (NVIDIA's OpenAI-compatible load generator) and PyYAML. Idempotent: a venv that already
# has the pinned versions is left alone. Needs only PyPI.
set -euo pipefail

AIPERF_VERSION="0.13.0"
PYYAML_VERSION="6.0.2"
VENV="${PERFSANITY_PYVENV:-/opt/perfsanity-venv}"
PYTHON="${PYTHON:-python3}"

# PyYAML: what TensorRT-LLM and upstream's harness read YAML with.
ensure_pyyaml() {
    "$VENV/bin/python" -c 'import yaml' 2>/dev/null ||
        "$VENV/bin/python" -m pip install --quiet "PyYAML==$PYYAML_VERSION"
}

if [ -x "$VENV/bin/aiperf" ] && "$VENV/bin/python" -m pip show aiperf 2>/dev/null | grep -qx "Version: $AIPERF_VERSION"; then
    ensure_pyyaml
    echo "install-python-tools: aiperf $AIPERF_VERSION already in $VENV"
    exit 0
fi

start=$(date +%s)
"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet "aiperf==$AIPERF_VERSION"
"$VENV/bin/aiperf" --version >/dev/null 2>&1 || "$VENV/bin/aiperf" --help >/dev/null
ensure_pyyaml
echo "install-python-tools: aiperf $AIPERF_VERSION installed in $VENV in $(( $(date +%s) - start )) s"
