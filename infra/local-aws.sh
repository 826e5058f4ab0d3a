#!/usr/bin/env bash
# Run template.yaml's tables, queues and bucket in a local moto_server.
#
#   infra/local-aws.sh            # or: make local-aws
#   MOTO_PORT=5005 infra/local-aws.sh
#
# Starts moto_server on a free loopback port (or $MOTO_PORT), waits until it answers,
# creates the template's resources with infra/moto-provision.py, prints the environment to
# use as `export` lines (also written to .local-aws/env, so another shell can
# `source .local-aws/env`), then keeps moto in the foreground until Ctrl-C. moto's own
# log goes to .local-aws/moto.log. Everything lives in memory: stopping moto forgets it all.
#
# Needs moto_server, python3 with boto3 and aws-sam-translator (pip install 'moto[server]'
# aws-sam-translator boto3). Only 127.0.0.1 is used.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
state="$root/.local-aws"
stack=${STACK_NAME:-runnerhub-local}
region=us-east-1

for tool in moto_server python3; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "local-aws: $tool is not installed (pip install 'moto[server]' aws-sam-translator boto3)" >&2
		exit 1
	fi
done

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if [[ -n "${MOTO_PORT:-}" ]]; then
	port=$MOTO_PORT
	if port_open "$port"; then
		echo "local-aws: 127.0.0.1:$port is already in use (unset MOTO_PORT to pick a free port)" >&2
		exit 1
	fi
else
	port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
fi
endpoint="http://127.0.0.1:$port"

mkdir -p "$state"
log="$state/moto.log"
: >"$log"

moto_server -H 127.0.0.1 -p "$port" >>"$log" 2>&1 &
moto_pid=$!

stop() {
	trap - EXIT INT TERM
	if kill -0 "$moto_pid" 2>/dev/null; then
		kill "$moto_pid" 2>/dev/null || true
		wait "$moto_pid" 2>/dev/null || true
	fi
	rm -f "$state/env"
}
trap stop EXIT
trap 'echo >&2; echo "local-aws: stopping moto_server" >&2; exit 0' INT TERM

# Wait until moto answers (it takes about a second), noticing if it dies instead.
for ((i = 0; i < 600; i++)); do
	if ! kill -0 "$moto_pid" 2>/dev/null; then
		echo "local-aws: moto_server exited before answering; its log:" >&2
		cat "$log" >&2
		exit 1
	fi
	port_open "$port" && break
	sleep 0.1
done
if ! port_open "$port"; then
	echo "local-aws: moto_server did not answer on $endpoint within 60s" >&2
	exit 1
fi

if ! resources=$(
	env -u AWS_PROFILE AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=$region \
		python3 "$root/infra/moto-provision.py" \
		--endpoint "$endpoint" \
		--template "$root/template.yaml" \
		--stack-name "$stack" \
		--region "$region" \
		--cache-dir "$state/cache" \
		--wait 60
); then
	echo "local-aws: provisioning failed; moto's log is in $log" >&2
	exit 1
fi

field() { python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1" <<<"$resources"; }

{
	echo "export AWS_ENDPOINT_URL=$endpoint"
	echo "export AWS_REGION=$region"
	echo "export AWS_DEFAULT_REGION=$region"
	echo "export AWS_ACCESS_KEY_ID=test"
	echo "export AWS_SECRET_ACCESS_KEY=test"
	echo "export RUNNERHUB_EVENTS_TABLE=$(field EventsTable)"
	echo "export RUNNERHUB_EVENTS_QUEUE_URL=$(field EventsQueueUrl)"
	echo "export RUNNERHUB_EVENTS_DLQ_URL=$(field EventsDLQUrl)"
	echo "export RUNNERHUB_PAYLOAD_BUCKET=$(field PayloadBucket)"
	echo "export RUNNERHUB_DEMAND_QUEUE_URL=$(field DemandQueueUrl)"
	echo "export RUNNERHUB_FANOUT_QUEUE_URL=$(field FanoutQueueUrl)"
	echo "export RUNNERHUB_RETENTION_DAYS=30"
	echo "export RUNNERHUB_MAX_BODY_BYTES=6291456"
} >"$state/env.tmp"
mv "$state/env.tmp" "$state/env"

cat "$state/env"
cat >&2 <<EOF

local-aws: moto_server is serving template.yaml's resources (stack $stack) on $endpoint
local-aws: the exports above are also in .local-aws/env (source it in another shell);
local-aws: set GITHUB_WEBHOOK_SECRET yourself. moto's log: .local-aws/moto.log. Ctrl-C stops.
local-aws: with aws CLI v1, pass --endpoint-url $endpoint (it ignores AWS_ENDPOINT_URL for SQS).
EOF

wait "$moto_pid"
