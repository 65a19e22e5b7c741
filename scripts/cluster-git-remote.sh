#!/usr/bin/env bash
# The kind workflow's GitOps remote: this clone, served over HTTP to the cluster, so that Argo CD syncs
# the commit under test and the pipeline's promotion commit lands somewhere the workflow can read.
#   scripts/cluster-git-remote.sh start <host-address> [port]   prints the remote's URL
#   scripts/cluster-git-remote.sh stop
# `start` commits, in this clone, the rewrite of the repository URL (platform/: the ApplicationSet,
# the AppProject, the Airflow Application and values) to the served URL, and serves that commit as
# branch main with git's own smart-HTTP backend (scripts/cluster-git-http.py). Fetching is open; a
# push needs GUESSME_GIT_TOKEN as its password, like a GitHub token.
# For CI only: `make cluster` on a laptop syncs the repository that platform/ names.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"
cd "$GUESSME_ROOT" || exit

served="$GUESSME_STATE/gitops-remote"
pidfile="$served/server.pid"
upstream="https://github.com/guessme-dev/guessme.git"

start() {
  local host="${1:?usage: cluster-git-remote.sh start <host-address> [port]}" port="${2:-8418}"
  local url="http://$host:$port/guessme.git"
  [[ -n "${GUESSME_GIT_TOKEN:-}" ]] || die "GUESSME_GIT_TOKEN must be set: pushes to the remote need it"
  [[ -z "$(git status --porcelain --untracked-files=no)" ]] \
    || die "the clone has uncommitted changes: the served commit would not be what was tested"
  grep -rl --include='*.yaml' -F "$upstream" platform | xargs -r sed -i "s#$upstream#$url#g"
  git -c user.name=ci -c user.email=ci@guessme.local commit --quiet -am "ci: the cluster syncs $url"
  rm -rf "$served"
  mkdir -p "$served"
  git init --quiet --bare --initial-branch=main "$served/guessme.git"
  git push --quiet "$served/guessme.git" HEAD:refs/heads/main
  setsid python3 "$GUESSME_ROOT/scripts/cluster-git-http.py" "$served" "$port" >"$served/server.log" 2>&1 &
  echo $! >"$pidfile"
  local tries=0
  until git ls-remote "$url" main >/dev/null 2>&1; do
    ((++tries < 50)) || die "the GitOps remote did not answer at $url (see $served/server.log)"
    sleep 0.2
  done
  log "serving this clone's HEAD as main at $url"
  echo "$url"
}

stop() {
  [[ -f "$pidfile" ]] || return 0
  kill "$(cat "$pidfile")" 2>/dev/null || true
  rm -f "$pidfile"
}

case "${1:-}" in
  start) shift; start "$@" ;;
  stop) stop ;;
  *) die "usage: scripts/cluster-git-remote.sh start <host-address> [port] | stop" ;;
esac
