# RunnerHub webhooks. `make run` starts the local stack; `make test` runs every test.
# `sam build` calls the build-<LogicalId> targets with ARTIFACTS_DIR set.

GO          ?= go
GOARCH      ?= arm64
BUILD_DIR   ?= build
STATICCHECK ?= $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2
FUNCTIONS   := WebhookFunction ProcessorFunction ApiFunction WebSocketFunction ReconcilerFunction FanoutFunction ProvisionerFunction
HOST_ARCH   := $(shell $(GO) env GOARCH)

# Logical id → package.
PKG_WebhookFunction   := ./functions/webhook
PKG_ProcessorFunction := ./functions/processor
PKG_ApiFunction       := ./functions/api
PKG_WebSocketFunction := ./functions/websocket
PKG_ReconcilerFunction := ./functions/reconciler
PKG_FanoutFunction    := ./functions/fanout
PKG_ProvisionerFunction := ./functions/provisioner

.PHONY: run test lint bench load latency build $(addprefix build-,$(FUNCTIONS)) invoke local-aws fuzz clean replay-dlq

run:
	$(GO) run ./functions/local

test: lint
	$(GO) test -count=1 ./...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

# Durable ingest under load: the bare HMAC-only handler and the local stack in one run
# (rates, ratio, p50/p99, every delivery checked durable and processed); `make latency`
# paces the local stack at 500/s for 30 s, each delivery a job of its own, and times
# receipt to committed processing. Both take -cpuprofile/-blockprofile: go run ./functions/local load -h.
load:
	$(GO) run ./functions/local load

latency:
	$(GO) run ./functions/local load -rate 500 -duration 30s -distinct-jobs

# The ingest scan against encoding/json, then the processor's decode against the scan.
fuzz:
	$(GO) test ./internal/webhook -run '^$$' -fuzz FuzzParse -fuzztime 60s
	$(GO) test ./internal/jobs -run '^$$' -fuzz FuzzPayloadReadAsIngestReadIt -fuzztime 60s

# A static Linux bootstrap per function, arm64 unless GOARCH says otherwise
# (tests build for the host: make build GOARCH=amd64).
build: $(addprefix build-,$(FUNCTIONS))

$(addprefix build-,$(FUNCTIONS)): build-%:
	@mkdir -p $(or $(ARTIFACTS_DIR),$(BUILD_DIR)/$*)
	CGO_ENABLED=0 GOOS=linux GOARCH=$(GOARCH) $(GO) build -tags lambda.norpc -trimpath -ldflags='-s -w' \
	  -o $(or $(ARTIFACTS_DIR),$(BUILD_DIR)/$*)/bootstrap $(PKG_$*)

# Run a built bootstrap under aws-lambda-rie against moto (started for the call unless
# AWS_ENDPOINT_URL already points at one), like `sam local invoke -e`:
#   make invoke FUNCTION=WebhookFunction EVENT=events/webhook-workflow-job-queued.json
invoke:
	@test -n "$(FUNCTION)" -a -n "$(EVENT)" || { echo "usage: make invoke FUNCTION=<LogicalId> EVENT=<file>; functions: $(FUNCTIONS)"; exit 2; }
	@case " $(FUNCTIONS) " in *" $(FUNCTION) "*) ;; *) echo "no function $(FUNCTION): want one of $(FUNCTIONS)"; exit 2;; esac
	@$(MAKE) --no-print-directory build-$(FUNCTION) GOARCH=$(HOST_ARCH) BUILD_DIR=$(BUILD_DIR)/host >/dev/null
	@infra/invoke.sh $(BUILD_DIR)/host/$(FUNCTION)/bootstrap $(EVENT)

# moto_server with the template's tables, queues and bucket; prints the environment to use.
local-aws:
	infra/local-aws.sh

clean:
	rm -rf $(BUILD_DIR) .aws-sam

# Move the deployed stack's dead-letter queue back to the events queue (needs the AWS
# environment: RUNNERHUB_EVENTS_QUEUE_URL, RUNNERHUB_EVENTS_DLQ_URL, credentials).
replay-dlq:
	$(GO) run ./functions/local replay-dlq
