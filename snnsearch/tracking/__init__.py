"""Tracking: one MLflow parent run per sweep and a nested child run per trial
(``mlflow_logging``, ``mlflow_client``), and the trial statuses and end-of-sweep summary shared by
MLflow, the Parquet table and the console (``summary``).

May import: snnsearch.storage, snnsearch.spaces, snnsearch.constants.
"""
