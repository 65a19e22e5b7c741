#!/usr/bin/env bash
# Idempotent, cached set-up. Usage: scripts/setup.sh [ml] [airflow] [tools] [node] [chromium] [nginx] (default: all)
# Each Python environment is built once per lock-file hash under $GUESSME_CACHE and linked into
# the state folder (guessme_contracts.layout: .guessme/venvs/), so a second run (or a fresh clone elsewhere) takes seconds, and a changed lock
# rebuilds only its own environment.
source "$(dirname "$0")/lib.sh"
cd "$GUESSME_ROOT" || exit

PYTHON_BIN="${GUESSME_PYTHON:-$(command -v python3.11 || command -v python3)}"

setup_venv() { # name
  local name="$1" lock="requirements/$1.lock"
  [[ -f "$lock" ]] || die "missing $lock (run: make lock)"
  local key
  key="$({ cat "$lock"; "$PYTHON_BIN" -VV; uname -m; } | sha256sum | cut -c1-16)"
  local dir="$GUESSME_CACHE/venvs/$name-$key" lock_fd
  mkdir -p "$GUESSME_CACHE/venvs"
  # Clones share the cache: one builds an environment while the others wait for it (not 6.5 GB each).
  exec {lock_fd}>"$dir.lock"
  flock "$lock_fd"
  if [[ ! -f "$dir/.complete" ]]; then
    log "building the $name environment from $lock (once per lock; cached in $dir)"
    local tmp="$dir.tmp.$$"
    rm -rf "$tmp"; mkdir -p "$(dirname "$dir")"
    "$PYTHON_BIN" -m venv "$tmp"
    # pip warns for every package missing from the local mirrors; keep real errors only.
    { "$tmp/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade "pip==$(sed -n 's/^# pip==//p' "$lock")"
      "$tmp/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -r "$lock"
    } 2> >(grep -v 'is ignored: it is neither a file nor a directory' >&2)
    "$tmp/bin/python" -m pip check >/dev/null || { "$tmp/bin/python" -m pip check; die "$name: pip check failed"; }
    # venvs hard-code their path: rebuild the scripts' shebangs for the final location.
    grep -rlI --null "$tmp" "$tmp/bin" | xargs -0 -r sed -i "s#$tmp#$dir#g"
    touch "$tmp/.complete"
    rm -rf "$dir"; mv "$tmp" "$dir"
  fi
  flock -u "$lock_fd"; exec {lock_fd}>&-
  # Linked where the layout says (lib.sh exports ML_VENV, AIRFLOW_VENV, TOOLS_VENV).
  local link_var="${name^^}_VENV"
  [[ -n "${!link_var:-}" ]] || die "the layout names no $link_var"
  mkdir -p "$(dirname "${!link_var}")"
  ln -sfn "$dir" "${!link_var}"
}

setup_node() {
  command -v npm >/dev/null || die "npm not found: install Node.js 20.19+"
  local app="apps/frontend" stamp key
  [[ -f "$app/package-lock.json" ]] || die "missing $app/package-lock.json"
  key="$(cat "$app/package-lock.json" <(node --version) | sha256sum | cut -c1-16)"
  stamp="$app/node_modules/.guessme-lock-$key"
  if [[ ! -f "$stamp" ]]; then
    log "installing front-end packages (npm ci)"
    (cd "$app" && npm ci --prefer-offline --no-audit --no-fund --loglevel=error)
    touch "$stamp"
  fi
}

setup_chromium() {
  if [[ -n "${GUESSME_CHROMIUM:-}" && -x "$GUESSME_CHROMIUM" ]]; then return; fi
  for c in chromium chromium-browser; do command -v "$c" >/dev/null && return; done
  log "no chromium found: installing Debian's chromium (browser tests)"
  local sudo=""; [[ $(id -u) -eq 0 ]] || sudo="sudo"
  $sudo apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
}

setup_nginx() { # the front end's nginx config is checked with the real `nginx -t` (tests/manifests)
  command -v nginx >/dev/null && return
  log "no nginx found: installing Debian's nginx-light (front-end config check)"
  local sudo=""; [[ $(id -u) -eq 0 ]] || sudo="sudo"
  $sudo apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq nginx-light >/dev/null
}

targets=("$@"); [[ ${#targets[@]} -gt 0 ]] || targets=(ml airflow tools node chromium nginx)
for t in "${targets[@]}"; do
  case "$t" in
    ml|airflow|tools) setup_venv "$t" ;;
    node) setup_node ;;
    chromium) setup_chromium ;;
    nginx) setup_nginx ;;
    *) die "unknown set-up target: $t" ;;
  esac
done
