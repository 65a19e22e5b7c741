"""The local platform without Kubernetes: processes for MLflow and Ray, and the GitOps sync."""
