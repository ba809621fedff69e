"""Operations: metrics, alert rules, alert delivery and dashboards (Prometheus, Alertmanager, Grafana)."""
