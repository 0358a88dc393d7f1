# MLflow tracking server for the compose cluster: basic-auth app, PostgreSQL backend store,
# artifacts proxied to an S3-compatible bucket (clients never hold the S3 keys).
# Build from the repository root:  docker build -f docker/mlflow.Dockerfile -t snnsearch-mlflow .
# mlflow is pinned to the version pyproject.toml allows (mlflow==3.17.*; checked by tests).
FROM python:3.11-slim

RUN python -m pip install --no-cache-dir "mlflow[auth]==3.17.2" "psycopg2-binary==2.9.*" "boto3==1.*" \
    && useradd --create-home --uid 1000 mlflow
COPY --chmod=755 docker/mlflow-entrypoint.sh /usr/local/bin/mlflow-entrypoint
# By uid (hadolint DL3066): the user created above.
USER 1000
WORKDIR /home/mlflow
ENV MLFLOW_DISABLE_TELEMETRY=true
EXPOSE 5000
ENTRYPOINT ["mlflow-entrypoint"]
