#!/usr/bin/env bash
# Create .venv and install imagegen with pinned dependencies (idempotent; re-runs only when pyproject.toml changes).
#
# torch comes first and pinned, so that nothing resolves an unpinned torch. Which build:
#   IMAGEGEN_TORCH_INDEX=URL   install torch from that index (e.g. PyTorch's index for your CUDA version,
#                              https://download.pytorch.org/whl/cuXYZ, as its install page gives it);
#   IMAGEGEN_TORCH_INDEX=pypi  install torch from pip's configured index (on Linux, PyPI's torch is the CUDA build);
#   unset                      pypi when nvidia-smi sees a GPU; otherwise PyTorch's CPU-only index, falling back
#                              to pip's configured index when that index cannot be reached.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
TORCH_VERSION=2.13.0
CPU_INDEX=https://download.pytorch.org/whl/cpu

install_torch() {
  local pip=(.venv/bin/python -m pip install -q)
  local choice=${IMAGEGEN_TORCH_INDEX:-}
  if [ -z "$choice" ]; then
    if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
      choice=pypi
    else
      choice=cpu-auto
    fi
  fi
  case "$choice" in
    pypi)
      "${pip[@]}" "torch==$TORCH_VERSION" ;;
    cpu-auto)
      # Probe the CPU index briefly (no network, or only a package mirror, is common on CI machines).
      local probe=(.venv/bin/python -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=10)"
                   "$CPU_INDEX/torch/")
      if command -v timeout >/dev/null 2>&1; then probe=(timeout 20 "${probe[@]}"); fi
      if "${probe[@]}" >/dev/null 2>&1 \
          && "${pip[@]}" --index-url "$CPU_INDEX" --timeout 30 "torch==$TORCH_VERSION"; then
        return 0
      fi
      echo "setup.sh: could not install torch==$TORCH_VERSION from PyTorch's CPU index ($CPU_INDEX);" \
           "using pip's configured index instead (on Linux, PyPI's torch is the larger CUDA build)." >&2
      "${pip[@]}" "torch==$TORCH_VERSION" ;;
    *)
      "${pip[@]}" --index-url "$choice" "torch==$TORCH_VERSION" ;;
  esac
}

if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.imagegen-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  # Keep an installed torch of the pinned version (CPU or CUDA build alike); delete .venv to switch builds.
  have=$(.venv/bin/python -c "import importlib.metadata as m; print(m.version('torch'))" 2>/dev/null || true)
  if [ "${have%%+*}" != "$TORCH_VERSION" ]; then
    install_torch
  fi
  .venv/bin/python -m pip install -q -e ".[dev]"
  echo "$want" > "$stamp"
fi
