"""The pipeline's orchestrator: Kubernetes-native, no Airflow.

A CLI (``orchestrator``, run by the chart's CronJob) that drives the Spark operator's
SparkApplications through the Kubernetes API, then asks the quality gate and the
warehouse loader to move a window on. See docs/orchestrator.md.
"""
