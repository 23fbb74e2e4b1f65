#!/bin/sh
# Entrypoint of the gcal-kafka image: `gcal-kafka "$@"`, after reading secrets from files.
#
# For every variable FILE__<NAME>=<path>, export <NAME> with the content of <path> (one
# trailing newline removed) and drop FILE__<NAME>. Mount secrets as files (Docker/Compose
# secrets, Kubernetes Secret volumes) and point a variable at them, e.g.
#   FILE__GCAL_KAFKA_WEBHOOK__SECRET=/run/secrets/webhook-secret
#   FILE__PGPASSWORD=/run/secrets/postgres-password
# so no secret is baked into the image or written into the compose file.
set -eu

for name in $(env | sed -n 's/^FILE__\([A-Za-z_][A-Za-z0-9_]*\)=.*/\1/p'); do
    path=$(printenv "FILE__$name")
    if [ ! -r "$path" ]; then
        echo "docker-entrypoint: FILE__$name: cannot read $path" >&2
        exit 2
    fi
    value=$(cat "$path")
    export "$name=$value"
    unset "FILE__$name"
done

exec gcal-kafka "$@"
