"""What operators watch: Prometheus metrics, JSON logs with request ids, liveness and readiness
(docs/deployment.md, "Observability")."""
