#!/usr/bin/env bash
# The kind workflow's GitOps remote: this clone, served over HTTP to the cluster, so that Argo CD syncs
# the commit under test and the pipeline's promotion commit lands somewhere the workflow can read.
#   scripts/cluster-git-remote.sh start <host-address> [port]   prints the remote's URL
#   scripts/cluster-git-remote.sh stop
# `start` commits, in this clone, the rewrite of the repository URL (platform/: the ApplicationSet,
# the AppProject, the Airflow Application and values) to the served URL, and serves that commit as
# branch main with git's own smart-HTTP backend (git http-backend, run as CGI by Python's http.server).
# Pushes need a user name (the CGI handler passes Basic auth's user as REMOTE_USER, which
# http-backend requires for receive-pack); the password is not checked: for a throw-away CI cluster.
# For CI only: `make cluster` on a laptop syncs the repository that platform/ names.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"
cd "$GUESSME_ROOT"

served="$GUESSME_STATE/gitops-remote"
pidfile="$served/server.pid"
upstream="https://github.com/guessme-dev/guessme.git"

start() {
  local host="${1:?usage: cluster-git-remote.sh start <host-address> [port]}" port="${2:-8418}"
  local url="http://$host:$port/cgi-bin/git/guessme.git"
  [[ -z "$(git status --porcelain --untracked-files=no)" ]] \
    || die "the clone has uncommitted changes: the served commit would not be what was tested"
  grep -rl --include='*.yaml' -F "$upstream" platform | xargs -r sed -i "s#$upstream#$url#g"
  git -c user.name=ci -c user.email=ci@guessme.local commit --quiet -am "ci: the cluster syncs $url"
  rm -rf "$served"
  mkdir -p "$served/cgi-bin"
  git init --quiet --bare "$served/guessme.git"
  git -C "$served/guessme.git" config http.receivepack true
  git push --quiet "$served/guessme.git" HEAD:refs/heads/main
  ln -s "$(git --exec-path)/git-http-backend" "$served/cgi-bin/git"
  (
    cd "$served"
    GIT_PROJECT_ROOT="$served" GIT_HTTP_EXPORT_ALL=1 \
      setsid python3 -m http.server --cgi --bind 0.0.0.0 "$port" >"$served/server.log" 2>&1 &
    echo $! >"$pidfile"
  )
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
