#!/usr/bin/env bash
# Starts `mlflow server --app-name basic-auth` with credentials read from secret files at run
# time (compose secrets under /run/secrets), so no password is in the image or in compose.yaml.
# Reads: postgres_password, mlflow_admin_password, s3_access_key, s3_secret_key.
set -euo pipefail

secret() {
    local file="/run/secrets/$1"
    if [[ ! -s "$file" ]]; then
        echo "error: secret $file missing or empty; create docker/secrets/$1 (see docs/cluster.md)" >&2
        exit 64
    fi
    tr -d '\n' < "$file"
}

# libpq reads PGPASSWORD, so the password stays out of the store URI (which MLflow may log).
export PGPASSWORD="$(secret postgres_password)"
export MLFLOW_AUTH_ADMIN_PASSWORD="$(secret mlflow_admin_password)"
export AWS_ACCESS_KEY_ID="$(secret s3_access_key)"
export AWS_SECRET_ACCESS_KEY="$(secret s3_secret_key)"
backend="postgresql://${POSTGRES_USER}@${POSTGRES_HOST:-postgres}:5432/${POSTGRES_DB}"

# The auth app keeps its users in the same PostgreSQL database (password again from PGPASSWORD).
umask 077
auth_ini="$(mktemp -t basic_auth.XXXXXX.ini)"
cat > "$auth_ini" <<INI
[mlflow]
default_permission = READ
database_uri = ${backend}
admin_username = ${MLFLOW_ADMIN_USER:-admin}
authorization_function = mlflow.server.auth:authenticate_request_basic_auth
grant_default_workspace_access = false
INI
export MLFLOW_AUTH_CONFIG_PATH="$auth_ini"

exec mlflow server --app-name basic-auth \
    --host 0.0.0.0 --port 5000 --workers "${MLFLOW_WORKERS:-4}" \
    --backend-store-uri "$backend" \
    --artifacts-destination "s3://${MLFLOW_BUCKET:-mlflow}/artifacts" \
    --allowed-hosts "${MLFLOW_ALLOWED_HOSTS:-mlflow:5000,localhost:5000,127.0.0.1:5000}"
