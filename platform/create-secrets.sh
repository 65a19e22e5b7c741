#!/usr/bin/env bash
# Creates the platform's secrets (namespace guessme-platform) and the serve app's round-ticket key
# (namespace guessme) in the current kubectl context; they are never in Git.
# Random passwords unless given in the environment (POSTGRES_PASSWORD, S3_ACCESS_KEY, S3_SECRET_KEY
# for a cloud bucket). Idempotent: an existing secret is left as it is, so re-running rotates nothing.
set -euo pipefail
ns=guessme-platform
rand() { openssl rand -hex 24; }

create_in() { # namespace, name, then --from-literal=... pairs
  local ns="$1" name="$2"; shift 2
  kubectl get namespace "$ns" >/dev/null 2>&1 || kubectl create namespace "$ns" >/dev/null
  if kubectl -n "$ns" get secret "$name" >/dev/null 2>&1; then
    echo "secret $ns/$name exists: kept"
  else
    kubectl -n "$ns" create secret generic "$name" "$@" >/dev/null && echo "secret $ns/$name created"
  fi
}
create() { create_in "$ns" "$@"; }

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
# The serve app's round-ticket HMAC key (GUESSME_ROUND_TICKET_KEY), shared by every Ray Serve replica:
# in the RayService's namespace. 48 hex characters (the app wants at least 32).
create_in guessme guessme-round-ticket --from-literal=key="$(rand)"
