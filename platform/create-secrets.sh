#!/usr/bin/env bash
# Creates the platform's secrets in the current kubectl context; they are never in Git.
# Random passwords unless given in the environment (POSTGRES_PASSWORD, S3_ACCESS_KEY, S3_SECRET_KEY
# for a cloud bucket). Idempotent: an existing secret is left as it is, so re-running rotates nothing.
set -euo pipefail
ns=guessme-platform
rand() { openssl rand -hex 24; }

kubectl get namespace "$ns" >/dev/null 2>&1 || kubectl create namespace "$ns"
create() { # name, then --from-literal=... pairs
  local name="$1"; shift
  if kubectl -n "$ns" get secret "$name" >/dev/null 2>&1; then
    echo "secret $ns/$name exists: kept"
  else
    kubectl -n "$ns" create secret generic "$name" "$@" >/dev/null && echo "secret $ns/$name created"
  fi
}

pg="${POSTGRES_PASSWORD:-$(rand)}"
if kubectl -n "$ns" get secret postgres >/dev/null 2>&1; then
  pg="$(kubectl -n "$ns" get secret postgres -o jsonpath='{.data.password}' | base64 -d)"
fi
create postgres --from-literal=password="$pg"
create object-store --from-literal=AWS_ACCESS_KEY_ID="${S3_ACCESS_KEY:-guessme-$(openssl rand -hex 4)}" \
  --from-literal=AWS_SECRET_ACCESS_KEY="${S3_SECRET_KEY:-$(rand)}"
create airflow-metadata \
  --from-literal=connection="postgresql://guessme:${pg}@postgres.${ns}.svc.cluster.local:5432/airflow"
create airflow-fernet-key --from-literal=fernet-key="$(openssl rand -base64 32 | tr '+/' '-_')"
create airflow-api-secret-key --from-literal=api-secret-key="$(rand)"
create airflow-jwt-secret --from-literal=jwt-secret="$(rand)"
