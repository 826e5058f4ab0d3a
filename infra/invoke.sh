#!/usr/bin/env bash
# Invoke a built Lambda bootstrap once with an event file, as `sam local invoke -e` does,
# without Docker: the bootstrap runs under aws-lambda-rie on free loopback ports.
#
#   infra/invoke.sh BOOTSTRAP EVENT
#   make invoke FUNCTION=WebhookFunction EVENT=events/webhook-ping.json
#
# BOOTSTRAP is <dir>/<LogicalId>/bootstrap, as the Makefile's build targets lay it out; the
# directory names the template's function.
#
# Without AWS_ENDPOINT_URL, a moto_server is started for the call, template.yaml's
# resources are created in it (infra/moto-provision.py, functions included, so that moto
# resolves each function's Environment from the template as CloudFormation would), and the
# function gets exactly that environment, its Timeout and the moto credentials; the
# caller's AWS_* settings are ignored. GITHUB_WEBHOOK_SECRET, GITHUB_WEBHOOK_SECRET_PREVIOUS,
# RUNNERHUB_API_TOKENS and LOG_LEVEL may be set by the caller; the secret and the token
# default to the ones events/ is made with (events/README.md). RUNNERHUB_WS_ENDPOINT
# points at moto, which serves the WebSocket management API (@connections) at its root.
#
# With AWS_ENDPOINT_URL set (a moto or LocalStack of your own, e.g. from `make
# local-aws`), the function gets the caller's environment as it is, and the RUNNERHUB_*
# variables must name the resources.
#
# Prints the function's response on stdout and nothing else; errors, with the emulator's
# and the function's output, go to stderr. Everything started is stopped on exit.
# Needs aws-lambda-rie, curl, setsid, python3; moto_server, boto3 and aws-sam-translator
# when it starts moto.
set -euo pipefail

readonly events_secret=runnerhub-events-secret
readonly events_api_token=runnerhub-events-api-token
readonly rie_version=v0.0.0-20261030222936-bef5c4ba774d

die() {
	echo "invoke: $*" >&2
	exit 1
}

# fail prints the named logs, then dies.
fail() {
	local message=$1
	shift
	for log in "$@"; do
		[[ -s $log ]] && { echo "--- $(basename "$log")" >&2; cat "$log" >&2; }
	done
	die "$message"
}

[[ $# -eq 2 ]] || { echo "usage: infra/invoke.sh BOOTSTRAP EVENT" >&2; exit 2; }
[[ -x $1 && -f $1 ]] || die "$1: not an executable bootstrap (make build-<LogicalId> GOARCH=\$(go env GOARCH))"
[[ -r $2 && -f $2 ]] || die "$2: no such event file"
bootstrap=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
event=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
function=$(basename "$(dirname "$bootstrap")")
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

rie=$(command -v aws-lambda-rie || true)
if [[ -z $rie ]]; then
	rie=$(go env GOPATH 2>/dev/null || echo "$HOME/go")/bin/aws-lambda-rie
	[[ -x $rie ]] || die "aws-lambda-rie is not installed (go install github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@$rie_version)"
fi
for tool in curl setsid python3; do
	command -v "$tool" >/dev/null || die "$tool is not installed"
done
setsid=$(command -v setsid)

work=$(mktemp -d "${TMPDIR:-/tmp}/runnerhub-invoke.XXXXXX")
moto_pid= rie_pid=

# stop kills a process group started with setsid. The emulator starts the bootstrap in a
# group of its own: its children go first, while it still runs to reap them.
stop() {
	local pid=$1 children child i
	[[ -n $pid ]] || return 0
	children=$(cat /proc/"$pid"/task/*/children 2>/dev/null || true)
	for child in $children; do
		kill -KILL -- -"$child" 2>/dev/null || true
	done
	for child in $children; do
		for ((i = 0; i < 100; i++)); do
			[[ -e /proc/$child ]] || break
			sleep 0.01
		done
	done
	kill -KILL -- -"$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}
cleanup() {
	stop "$rie_pid"
	stop "$moto_pid"
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Three distinct free loopback ports: the sockets stay open until all are chosen.
read -r moto_port api_port rapid_port < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(3)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
')
[[ -n ${rapid_port:-} ]] || die "could not find free loopback ports"

fn_env=()
if [[ -z ${AWS_ENDPOINT_URL:-} ]]; then
	command -v moto_server >/dev/null || die "moto_server is not installed (pip install 'moto[server]'), and AWS_ENDPOINT_URL is not set"
	# Nothing of the caller's AWS configuration may reach moto, the provisioning or the function.
	for name in $(compgen -e); do
		[[ $name == AWS_* ]] && unset "$name"
	done
	endpoint=http://127.0.0.1:$moto_port
	export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
	export AWS_EC2_METADATA_DISABLED=true

	"$setsid" moto_server -H 127.0.0.1 -p "$moto_port" >"$work/moto.log" 2>&1 &
	moto_pid=$!
	python3 "$root/infra/moto-provision.py" --endpoint "$endpoint" --template "$root/template.yaml" \
		--stack-name runnerhub-invoke --with-functions --wait 60 \
		--cache-dir "${TMPDIR:-/tmp}/runnerhub-moto-provision-cache" \
		>"$work/resources.json" 2>"$work/provision.log" ||
		fail "provisioning template.yaml in moto_server failed" "$work/provision.log" "$work/moto.log"

	# The function's environment and settings as moto resolved them from the template,
	# NUL-separated: values may hold newlines.
	python3 - "$work/resources.json" "$function" "$endpoint" >"$work/env" 2>"$work/env.log" <<-'EOF' ||
		import json, sys
		import boto3
		resources_file, function, endpoint = sys.argv[1:]
		with open(resources_file) as f:
		    name = json.load(f)["Resources"].get(function)
		if name is None:
		    sys.exit(f"template.yaml has no function {function} (the bootstrap's directory name)")
		cfg = boto3.client("lambda", endpoint_url=endpoint).get_function_configuration(FunctionName=name)
		env = dict(cfg.get("Environment", {}).get("Variables", {}))
		env.update(AWS_LAMBDA_FUNCTION_NAME=name, AWS_LAMBDA_FUNCTION_TIMEOUT=str(cfg["Timeout"]),
		           AWS_LAMBDA_FUNCTION_MEMORY_SIZE=str(cfg["MemorySize"]))
		sys.stdout.write("".join(f"{k}={v}\0" for k, v in env.items()))
	EOF
		fail "reading $function's environment from moto failed" "$work/env.log"
	mapfile -d '' fn_env <"$work/env"
	# moto serves the WebSocket API's management endpoint (@connections) at its root.
	for i in "${!fn_env[@]}"; do
		[[ ${fn_env[$i]} == RUNNERHUB_WS_ENDPOINT=* ]] && fn_env[i]=RUNNERHUB_WS_ENDPOINT=$endpoint
	done
	fn_env+=(AWS_ENDPOINT_URL="$endpoint" AWS_REGION="$AWS_REGION" AWS_DEFAULT_REGION="$AWS_DEFAULT_REGION"
		AWS_ACCESS_KEY_ID="$AWS_ACCESS_KEY_ID" AWS_SECRET_ACCESS_KEY="$AWS_SECRET_ACCESS_KEY"
		AWS_EC2_METADATA_DISABLED=true)
	for name in GITHUB_WEBHOOK_SECRET_PREVIOUS LOG_LEVEL; do
		[[ -n ${!name:-} ]] && fn_env+=("$name=${!name}")
	done
else
	mapfile -d '' fn_env < <(env -0)
fi
fn_env+=(GITHUB_WEBHOOK_SECRET="${GITHUB_WEBHOOK_SECRET:-$events_secret}")
fn_env+=(RUNNERHUB_API_TOKENS="${RUNNERHUB_API_TOKENS:-$events_api_token}")

# The emulator runs the bootstrap in its own working directory, as Lambda runs it in
# /var/task. It also reads LOG_LEVEL, the function's setting, and exits on a value its
# logger does not know: it gets its own.
(
	cd "$(dirname "$bootstrap")"
	exec env -i "${fn_env[@]}" "$setsid" "$rie" --log-level info \
		--runtime-interface-emulator-address "127.0.0.1:$api_port" \
		--runtime-api-address "127.0.0.1:$rapid_port" \
		"$bootstrap"
) >"$work/lambda.log" 2>&1 &
rie_pid=$!

# Ready when the runtime API answers its ping and the invocation port accepts a
# connection (only a connection: any request there would invoke the function).
for ((i = 0; ; i++)); do
	kill -0 "$rie_pid" 2>/dev/null || fail "aws-lambda-rie exited" "$work/lambda.log"
	if [[ $(curl -s --max-time 1 "http://127.0.0.1:$rapid_port/2018-06-01/ping" 2>/dev/null) == pong ]] &&
		(exec 3<>"/dev/tcp/127.0.0.1/$api_port") 2>/dev/null; then
		break
	fi
	((i < 600)) || fail "aws-lambda-rie did not answer within 30s" "$work/lambda.log"
	sleep 0.05
done

status=$(curl -sS --max-time 300 -o "$work/response" -w '%{http_code}' \
	--data-binary @"$event" "http://127.0.0.1:$api_port/2015-03-31/functions/function/invocations" 2>"$work/curl.log") ||
	fail "invoking the function failed" "$work/curl.log" "$work/lambda.log"
[[ $status == 200 ]] || fail "the function failed (aws-lambda-rie answered HTTP $status)" "$work/response" "$work/lambda.log"
cat "$work/response"
echo
