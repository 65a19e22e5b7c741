#!/usr/bin/env bash
# `make cluster` / `make cluster-down`: Guessme on a local kind cluster (docs/deploy.md, "make cluster").
#   scripts/cluster.sh up     kind cluster + ingress-nginx + Argo CD (pinned), the secrets, the local
#                             images, the GitOps bootstrap; waits until the game answers through the
#                             ingress, then prints the URLs.
#   scripts/cluster.sh down   deletes the cluster, only if `up` created it.
# Settings (environment): GUESSME_CLUSTER_NAME (guessme), GUESSME_CLUSTER_MODE (gitops: Argo CD syncs
# environments/local from Git; tilt: no bootstrap, run `tilt up` next), GUESSME_CLUSTER_HTTP_PORT (80),
# GUESSME_GIT_TOKEN (the token the pipeline pushes promotions with; stored in a Secret).
set -euo pipefail

# Pinned versions: the Kubernetes node, the ingress controller and Argo CD (the CRDs the offline tests
# use are Argo CD v3.5.1's: tests/manifests/crds).
KIND_NODE_IMAGE="kindest/node:v1.34.0"
INGRESS_NGINX_VERSION="controller-v1.14.0"
ARGOCD_VERSION="v3.5.1"

name="${GUESSME_CLUSTER_NAME:-guessme}"
mode="${GUESSME_CLUSTER_MODE:-gitops}"
http_port="${GUESSME_CLUSTER_HTTP_PORT:-80}"
context="kind-$name"
# Marks a cluster as made by this script (`down` deletes nothing else).
marker_ns="kube-system"
marker="guessme-cluster"

say() { printf '\033[1;34m[cluster]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31m[cluster] error:\033[0m %s\n' "$*" >&2; exit 1; }

# --- preflight: before anything else, so a machine without Docker fails at once ------------------
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Before any Python runs (preflight needs none), so the ML environment's place in a clone is written out
# here; tests/contracts/test_layout.py ties it to guessme_contracts.layout.
kubectl_bin() {
  if command -v kubectl >/dev/null 2>&1; then command -v kubectl
  elif [[ -x "$root/.guessme/venvs/ml/bin/kubectl" ]]; then echo "$root/.guessme/venvs/ml/bin/kubectl"
  fi
}
preflight() {
  local missing=()
  command -v docker >/dev/null 2>&1 || missing+=("docker (https://docs.docker.com/engine/install/)")
  command -v kind >/dev/null 2>&1 || missing+=("kind (https://kind.sigs.k8s.io/docs/user/quick-start/#installation)")
  [[ -n "$(kubectl_bin)" ]] || missing+=("kubectl (or run: make setup)")
  if ((${#missing[@]})); then
    local list
    list="$(printf '%s; ' "${missing[@]}")"
    die "make cluster needs Docker and kind; not found on PATH: ${list%; }"
  fi
  timeout 20 docker info >/dev/null 2>&1 \
    || die "docker is installed but its engine does not answer (is the Docker daemon running? try: docker info)"
}

case "$mode" in gitops | tilt) ;; *) die "GUESSME_CLUSTER_MODE must be gitops or tilt, not '$mode'" ;; esac
command_name="${1:-up}"
case "$command_name" in up | down) ;; *) die "usage: scripts/cluster.sh up|down" ;; esac
preflight

KUBECTL="$(kubectl_bin)"
k() { "$KUBECTL" --context "$context" "$@"; }

cluster_exists() { kind get clusters 2>/dev/null | grep -qx "$name"; }
made_by_us() { k -n "$marker_ns" get configmap "$marker" >/dev/null 2>&1; }

down() {
  if ! cluster_exists; then
    say "no kind cluster named $name: nothing to delete"
    return
  fi
  made_by_us || die "kind cluster $name was not created by make cluster (no $marker_ns/$marker ConfigMap): not deleting it; delete it yourself with: kind delete cluster --name $name"
  kind delete cluster --name "$name"
}

create_cluster() {
  if cluster_exists; then
    made_by_us || die "a kind cluster named $name exists that make cluster did not create: not touching it. Use another name (GUESSME_CLUSTER_NAME=...) or delete it yourself (kind delete cluster --name $name)"
    say "reusing kind cluster $name (made by make cluster)"
    return
  fi
  say "creating kind cluster $name ($KIND_NODE_IMAGE; the ingress on host port $http_port)"
  # One node labelled for ingress-nginx's kind manifest, which binds host ports 80/443 through it.
  kind create cluster --name "$name" --image "$KIND_NODE_IMAGE" --wait 5m --config - <<EOF
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
nodes:
  - role: control-plane
    labels:
      ingress-ready: "true"
    extraPortMappings:
      - {containerPort: 80, hostPort: $http_port, protocol: TCP}
EOF
  k -n "$marker_ns" create configmap "$marker" --from-literal=created-by="make cluster" \
    --from-literal=mode="$mode" >/dev/null
}

install_ingress() {
  say "ingress-nginx $INGRESS_NGINX_VERSION"
  k apply -f "https://raw.githubusercontent.com/kubernetes/ingress-nginx/$INGRESS_NGINX_VERSION/deploy/static/provider/kind/deploy.yaml" >/dev/null
  k -n ingress-nginx rollout status deployment/ingress-nginx-controller --timeout=5m
}

install_argocd() {
  say "Argo CD $ARGOCD_VERSION"
  k get namespace argocd >/dev/null 2>&1 || k create namespace argocd >/dev/null
  k -n argocd apply --server-side --force-conflicts \
    -f "https://raw.githubusercontent.com/argoproj/argo-cd/$ARGOCD_VERSION/manifests/install.yaml" >/dev/null
  for d in argocd-server argocd-repo-server argocd-applicationset-controller; do
    k -n argocd rollout status "deployment/$d" --timeout=5m
  done
  k -n argocd rollout status statefulset/argocd-application-controller --timeout=5m
}

create_secrets() {
  say "secrets (platform/create-secrets.sh keeps the ones that exist)"
  "$KUBECTL" config use-context "$context" >/dev/null
  PATH="$(dirname "$KUBECTL"):$PATH" "$root/platform/create-secrets.sh"
  if [[ -n "${GUESSME_GIT_TOKEN:-}" ]]; then
    k -n guessme-platform create secret generic guessme-git-token --from-literal=token="$GUESSME_GIT_TOKEN" \
      --dry-run=client -o yaml | k apply -f - >/dev/null
    say "secret guessme-platform/guessme-git-token set from GUESSME_GIT_TOKEN"
  else
    say "no GUESSME_GIT_TOKEN: the pipeline's promote task will fail, naming the Secret guessme-git-token"
  fi
}

# The Airflow image's name comes from the chart values that use it (one place).
airflow_image() {
  local values="$root/platform/airflow/values.yaml" repo tag
  repo="$(sed -n 's/^defaultAirflowRepository: *//p' "$values" | tr -d '"')"
  tag="$(sed -n 's/^defaultAirflowTag: *//p' "$values" | tr -d '"')"
  echo "$repo:$tag"
}

build_images() {
  # The overlay's images (environments/local names them :dev); with Tilt, Tilt builds those itself.
  local -a images=("$(airflow_image)|platform/airflow/Dockerfile|.")
  if [[ "$mode" == gitops ]]; then
    images+=(
      "guessme-serve:dev|apps/guessme-serve/Dockerfile|."
      "guessme-train:dev|apps/guessme-train/Dockerfile|."
      "guessme-frontend:dev|apps/frontend/Dockerfile|apps/frontend"
      "guessme-mlflow:dev|platform/mlflow/Dockerfile|platform/mlflow"
    )
  fi
  say "building and loading ${#images[@]} images (the first build takes about 10 minutes)"
  local entry image dockerfile context_dir
  for entry in "${images[@]}"; do
    IFS='|' read -r image dockerfile context_dir <<<"$entry"
    say "  $image"
    DOCKER_BUILDKIT=1 docker build --quiet -t "$image" -f "$root/$dockerfile" "$root/$context_dir" >/dev/null
    kind load docker-image --name "$name" "$image" >/dev/null
  done
}

bootstrap() {
  if [[ "$mode" == tilt ]]; then
    say "mode tilt: no GitOps bootstrap; next: tilt up"
    return
  fi
  say "GitOps bootstrap: this cluster is environment 'local' (platform/argocd)"
  k -n argocd create secret generic in-cluster --from-literal=name=in-cluster \
    --from-literal=server=https://kubernetes.default.svc --dry-run=client -o yaml | k apply -f - >/dev/null
  k -n argocd label --overwrite secret in-cluster \
    argocd.argoproj.io/secret-type=cluster guessme.dev/environment=local >/dev/null
  k apply --server-side -k "$root/platform/argocd" >/dev/null
}

game_url() { if [[ "$http_port" == 80 ]]; then echo "http://guessme.localtest.me"; else echo "http://guessme.localtest.me:$http_port"; fi; }

wait_for_game() {
  [[ "$mode" == gitops ]] || return 0
  local url deadline
  url="$(game_url)"
  deadline=$((SECONDS + ${GUESSME_CLUSTER_WAIT_S:-2400}))
  say "waiting for the game at $url (Argo CD syncs the platform, KubeRay starts Serve: 10-20 minutes)"
  until curl -fsS -o /dev/null --max-time 5 "$url/" && curl -fsS -o /dev/null --max-time 5 "$url/healthz"; do
    ((SECONDS < deadline)) || die "the game did not answer at $url in time; see: kubectl --context $context -n argocd get applications; kubectl --context $context get pods -A"
    sleep 10
  done
  say "the game answers through the ingress"
}

print_urls() {
  if [[ "$mode" == tilt ]]; then
    say "cluster $name is ready for Tilt: run tilt up (it forwards the game to http://localhost:8000)"
    return
  fi
  cat <<EOF

Guessme on kind cluster '$name' (kubectl context $context):
  game      $(game_url)   (Serve answers 503 until the first promotion: run the DAG)
  Argo CD   kubectl --context $context -n argocd port-forward svc/argocd-server 8443:443
            then https://localhost:8443  user admin, password:
            kubectl --context $context -n argocd get secret argocd-initial-admin-secret -o jsonpath='{.data.password}' | base64 -d
  MLflow    kubectl --context $context -n guessme-platform port-forward svc/mlflow 5000:5000  -> http://localhost:5000
  Airflow   kubectl --context $context -n guessme-platform port-forward svc/airflow-api-server 8080:8080  -> http://localhost:8080
  remove    make cluster-down
EOF
}

if [[ "$command_name" == down ]]; then
  down
  exit 0
fi
create_cluster
install_ingress
install_argocd
create_secrets
build_images
bootstrap
wait_for_game
print_urls
