#!/usr/bin/env bash
# One command from a fresh clone to a running pipeline: installs everything (.ci/setup), then
# starts Apache Kafka, the Google Calendar emulator with sample data, the connector and a live
# view of the change events. Ctrl-C stops it all.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash .ci/setup
exec .venv/bin/python deploy/local/quickstart.py "$@"
