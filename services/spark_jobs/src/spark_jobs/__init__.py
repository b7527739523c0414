"""Spark jobs of the pipeline. Each module is one job with ``main(argv)`` and runs as
``python -m spark_jobs.<job>`` locally or under spark-submit (SparkApplication)."""
