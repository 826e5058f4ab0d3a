package testenv

// The Lambda events in events/ are generated from the GitHub payloads in testdata/ by
// TestEventsUpToDate:
//
//	go test ./internal/testenv -run TestEvents -update
//
// rewrites them; without -update the test fails when a committed event no longer matches
// what the generator makes of testdata/. TestEventsSigned checks the committed files
// independently of the generator: decoded with aws-lambda-go's own types, the way the
// functions decode them, every delivery carries its fixture byte for byte and a signature
// made with EventsSecret (except the one that must fail).

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/runnerhub/webhooks/internal/delivery"
	"github.com/runnerhub/webhooks/internal/processing"
	"github.com/runnerhub/webhooks/internal/webhook"
)

var update = flag.Bool("update", false, "rewrite events/ from testdata/")

// webhookEvent is one API Gateway event for the WebhookFunction.
type webhookEvent struct {
	file    string // in events/
	fixture string // in testdata/; the event name is its first dot-separated part
	form    bool   // application/x-www-form-urlencoded, the payload in the payload field
	secret  string // the signing secret when it is not EventsSecret
}

var webhookEvents = []webhookEvent{
	{file: "webhook-workflow-job-queued.json", fixture: "workflow_job.queued.json"},
	{file: "webhook-workflow-job-in-progress.json", fixture: "workflow_job.in_progress.json"},
	{file: "webhook-workflow-job-completed.json", fixture: "workflow_job.completed.json"},
	{file: "webhook-workflow-job-waiting.json", fixture: "workflow_job.waiting.json"},
	{file: "webhook-workflow-run-requested.json", fixture: "workflow_run.requested.json"},
	{file: "webhook-push.json", fixture: "push.json"},
	{file: "webhook-pull-request-opened.json", fixture: "pull_request.opened.json"},
	{file: "webhook-ping.json", fixture: "ping.json"},
	{file: "webhook-form-encoded.json", fixture: "workflow_job.queued.2.json", form: true},
	{file: "webhook-bad-signature.json", fixture: "workflow_job.completed.2.json", secret: "not-the-" + EventsSecret},
}

const (
	processorEvent = "processor-sqs.json"
	resendEvent    = "processor-resend-demands.json"
	// reconcilerEvent is what the ReconcilerFunction's schedule (EventBridge) sends.
	reconcilerEvent = "reconciler-scheduled.json"
	// malformedBody is a queue message cut short, as a buggy producer might send it; the
	// processor must report it, alone, as a batch item failure.
	malformedBody = `{"hookId":"109948940","deliveryId":`
)

// Constant parts of the events. The hook is the one ping.json was sent for; the API id,
// account and queue are the documentation's placeholders.
const (
	hookID     = "109948940"
	apiID      = "abcdef1234"
	apiDomain  = apiID + ".execute-api.us-east-1.amazonaws.com"
	accountID  = "123456789012"
	routeKey   = "POST /api/webhooks/github"
	routePath  = "/api/webhooks/github"
	githubIP   = "140.82.115.10" // in GitHub's hooks range, 140.82.112.0/20
	userAgent  = "GitHub-Hookshot/9a1c6b2"
	queueARN   = "arn:aws:sqs:us-east-1:" + accountID + ":runnerhub-EventsQueue-EXAMPLE"
	senderID   = "AROAEXAMPLEROLEID:runnerhub-WebhookFunction-EXAMPLE"
	awsRegion  = "us-east-1"
	timeLayout = "02/Jan/2006:15:04:05 -0700" // API Gateway's requestContext.time
)

// firstDelivery is when the first event is received; each next one a minute later, so
// that the events sort in the order of webhookEvents.
var firstDelivery = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

// httpAPIEvent is an API Gateway HTTP API payload format 2.0 event, with the fields API
// Gateway sends and no others (aws-lambda-go's type would add empty authentication and
// cookie members).
type httpAPIEvent struct {
	Version         string            `json:"version"`
	RouteKey        string            `json:"routeKey"`
	RawPath         string            `json:"rawPath"`
	RawQueryString  string            `json:"rawQueryString"`
	Headers         map[string]string `json:"headers"`
	RequestContext  httpAPIContext    `json:"requestContext"`
	Body            string            `json:"body"`
	IsBase64Encoded bool              `json:"isBase64Encoded"`
}

type httpAPIContext struct {
	AccountID    string `json:"accountId"`
	APIID        string `json:"apiId"`
	DomainName   string `json:"domainName"`
	DomainPrefix string `json:"domainPrefix"`
	HTTP         struct {
		Method    string `json:"method"`
		Path      string `json:"path"`
		Protocol  string `json:"protocol"`
		SourceIP  string `json:"sourceIp"`
		UserAgent string `json:"userAgent"`
	} `json:"http"`
	RequestID string `json:"requestId"`
	RouteKey  string `json:"routeKey"`
	Stage     string `json:"stage"`
	Time      string `json:"time"`
	TimeEpoch int64  `json:"timeEpoch"`
}

type sqsEvent struct {
	Records []sqsRecord `json:"Records"`
}

type sqsRecord struct {
	MessageID              string                  `json:"messageId"`
	ReceiptHandle          string                  `json:"receiptHandle"`
	Body                   string                  `json:"body"`
	Attributes             map[string]string       `json:"attributes"`
	MessageAttributes      map[string]sqsAttribute `json:"messageAttributes"`
	MD5OfMessageAttributes *string                 `json:"md5OfMessageAttributes"`
	MD5OfBody              string                  `json:"md5OfBody"`
	EventSource            string                  `json:"eventSource"`
	EventSourceARN         string                  `json:"eventSourceARN"`
	AWSRegion              string                  `json:"awsRegion"`
}

type sqsAttribute struct {
	StringValue      string   `json:"stringValue"`
	StringListValues []string `json:"stringListValues"`
	BinaryListValues []string `json:"binaryListValues"`
	DataType         string   `json:"dataType"`
}

// generateEvents returns what the generator makes of testdata/: file name → content.
func generateEvents(t *testing.T) map[string][]byte {
	t.Helper()
	root := RepoRoot(t)
	files := map[string][]byte{}
	var queued []sqsRecord
	for i, e := range webhookEvents {
		fixture, err := os.ReadFile(filepath.Join(root, "testdata", e.fixture))
		if err != nil {
			t.Fatal(err)
		}
		ev, msg := e.build(t, fixture, firstDelivery.Add(time.Duration(i)*time.Minute))
		files[e.file] = encodeEvent(t, ev)
		if e.secret == "" { // the webhook accepts it and queues msg
			queued = append(queued, sqsRecordFor(t, msg, firstDelivery.Add(time.Duration(i)*time.Minute+time.Second)))
		}
	}
	// The malformed record goes in the middle: the records after it must still be processed.
	malformed := queueRecord(queueARN, "malformed", "malformed", malformedBody, sqsAttributes(firstDelivery.Add(time.Hour), senderID), nil)
	records := slices.Insert(queued, len(queued)/2, malformed)
	files[processorEvent] = encodeEvent(t, sqsEvent{Records: records})
	// What the ResendDemands schedule sends (template.yaml), with every waiting job's
	// demand due rather than the deployed threshold, so that one invocation shows it.
	files[resendEvent] = encodeEvent(t, processing.Task{Task: processing.TaskResendDemands, OlderThan: "0s"})
	files[reconcilerEvent] = encodeEvent(t, events.EventBridgeEvent{
		Version: "0", ID: "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa", DetailType: "Scheduled Event", Source: "aws.events",
		AccountID: accountID, Time: firstDelivery, Region: awsRegion,
		Resources: []string{"arn:aws:events:" + awsRegion + ":" + accountID + ":rule/runnerhub-ReconcilerFunctionReconcile-EXAMPLE"},
		Detail:    json.RawMessage(`{}`),
	})
	maps.Copy(files, generateWebSocketEvents(t))
	maps.Copy(files, generateFanoutEvents(t))
	maps.Copy(files, generateAPIEvents(t))
	maps.Copy(files, generateProvisionerEvents(t))
	return files
}

// build returns the API Gateway event delivering fixture and the queue message the
// webhook function sends for it.
func (e webhookEvent) build(t *testing.T, fixture []byte, at time.Time) (httpAPIEvent, delivery.Message) {
	event, _, _ := strings.Cut(e.fixture, ".")
	var routing struct {
		Repository struct{ ID int64 } `json:"repository"`
	}
	if err := json.Unmarshal(fixture, &routing); err != nil || routing.Repository.ID == 0 {
		t.Fatalf("testdata/%s: no repository.id (%v)", e.fixture, err)
	}
	body, contentType := fixture, "application/json"
	if e.form {
		body = []byte(url.Values{"payload": {string(fixture)}}.Encode())
		contentType = "application/x-www-form-urlencoded"
	}
	secret := EventsSecret
	if e.secret != "" {
		secret = e.secret
	}
	deliveryID := uuidFor(e.file)
	sha1MAC := hmac.New(sha1.New, []byte(secret))
	sha1MAC.Write(body)

	ev := httpAPIEvent{
		Version:  "2.0",
		RouteKey: routeKey,
		RawPath:  routePath,
		// API Gateway lower-cases header names; GitHub sends these, and API Gateway adds
		// the host, x-amzn-trace-id and x-forwarded-* ones.
		Headers: map[string]string{
			"accept":                                 "*/*",
			"content-length":                         strconv.Itoa(len(body)),
			"content-type":                           contentType,
			"host":                                   apiDomain,
			"user-agent":                             userAgent,
			"x-amzn-trace-id":                        traceIDFor(e.file, at),
			"x-forwarded-for":                        githubIP,
			"x-forwarded-port":                       "443",
			"x-forwarded-proto":                      "https",
			"x-github-delivery":                      deliveryID,
			"x-github-event":                         event,
			"x-github-hook-id":                       hookID,
			"x-github-hook-installation-target-id":   strconv.FormatInt(routing.Repository.ID, 10),
			"x-github-hook-installation-target-type": "repository",
			// GitHub still sends the SHA-1 signature next to the SHA-256 one; only the
			// latter may be trusted.
			"x-hub-signature":     "sha1=" + hex.EncodeToString(sha1MAC.Sum(nil)),
			"x-hub-signature-256": webhook.Sign(secret, body),
		},
		Body: string(body),
	}
	// API Gateway passes JSON bodies as text and base64-encodes the rest, form bodies
	// included.
	if e.form {
		ev.Body, ev.IsBase64Encoded = base64.StdEncoding.EncodeToString(body), true
	}
	c := &ev.RequestContext
	c.AccountID, c.APIID, c.DomainName, c.DomainPrefix = accountID, apiID, apiDomain, apiID
	c.HTTP.Method, c.HTTP.Path, c.HTTP.Protocol = "POST", routePath, "HTTP/1.1"
	c.HTTP.SourceIP, c.HTTP.UserAgent = githubIP, userAgent
	c.RequestID = requestIDFor(e.file)
	c.RouteKey, c.Stage = routeKey, "$default"
	c.Time, c.TimeEpoch = at.Format(timeLayout), at.UnixMilli()

	return ev, delivery.Message{Key: delivery.Key{HookID: hookID, DeliveryID: deliveryID}, Event: event}
}

// sqsRecordFor is the record Lambda's SQS event source would hand the processor for the
// message the webhook function sends: the body is encoded by the same code.
func sqsRecordFor(t *testing.T, msg delivery.Message, sent time.Time) sqsRecord {
	body, err := json.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	attrs := map[string]sqsAttribute{
		"event": {StringValue: msg.Event, StringListValues: []string{}, BinaryListValues: []string{}, DataType: "String"},
	}
	return queueRecord(queueARN, "message "+msg.DeliveryID, msg.DeliveryID, string(body), sqsAttributes(sent, senderID), attrs)
}

// queueRecord is the record Lambda's SQS event source hands a function for body, waiting
// on the queue (its ARN): its message id and receipt handle derived from their seeds, its
// digests computed, md5OfMessageAttributes null when it has no message attributes.
func queueRecord(queue, messageSeed, receiptSeed, body string, attributes map[string]string, messageAttributes map[string]sqsAttribute) sqsRecord {
	r := sqsRecord{
		MessageID:         uuidFor(messageSeed),
		ReceiptHandle:     receiptHandleFor(receiptSeed),
		Body:              body,
		Attributes:        attributes,
		MessageAttributes: map[string]sqsAttribute{},
		MD5OfBody:         md5Hex([]byte(body)),
		EventSource:       "aws:sqs",
		EventSourceARN:    queue,
		AWSRegion:         awsRegion,
	}
	if len(messageAttributes) > 0 {
		sum := md5OfMessageAttributes(messageAttributes)
		r.MessageAttributes, r.MD5OfMessageAttributes = messageAttributes, &sum
	}
	return r
}

// sqsAttributes are the system attributes of a message sender sent at sent, received
// once.
func sqsAttributes(sent time.Time, sender string) map[string]string {
	ms := strconv.FormatInt(sent.UnixMilli(), 10)
	return map[string]string{
		"ApproximateReceiveCount":          "1",
		"SentTimestamp":                    ms,
		"SenderId":                         sender,
		"ApproximateFirstReceiveTimestamp": ms,
	}
}

// md5OfMessageAttributes is SQS's digest of message attributes: for each attribute in
// name order, the length-prefixed name, data type and value, with transport type 1
// (string) before the value.
func md5OfMessageAttributes(attrs map[string]sqsAttribute) string {
	var buf bytes.Buffer
	field := func(s string) {
		_ = binary.Write(&buf, binary.BigEndian, uint32(len(s)))
		buf.WriteString(s)
	}
	names := make([]string, 0, len(attrs))
	for name := range attrs {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		field(name)
		field(attrs[name].DataType)
		buf.WriteByte(1)
		field(attrs[name].StringValue)
	}
	return md5Hex(buf.Bytes())
}

func md5Hex(b []byte) string {
	sum := md5.Sum(b)
	return hex.EncodeToString(sum[:])
}

// Identifiers are derived from the event's name, so that regenerating changes nothing
// unless testdata/ or the generator did.
func digest(seed string) []byte {
	sum := sha256.Sum256([]byte("runnerhub events: " + seed))
	return sum[:]
}

// uuidFor returns a version 4 UUID, the shape of GitHub's delivery GUIDs and SQS message
// ids.
func uuidFor(seed string) string {
	b := digest(seed)[:16]
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func requestIDFor(seed string) string {
	return base64.StdEncoding.EncodeToString(digest("request " + seed)[:11])
}

func traceIDFor(seed string, at time.Time) string {
	return fmt.Sprintf("Root=1-%08x-%s", at.Unix(), hex.EncodeToString(digest("trace " + seed)[:12]))
}

func receiptHandleFor(seed string) string {
	return "AQEB" + base64.StdEncoding.EncodeToString(digest("receipt "+seed))
}

// encodeEvent indents and keeps '<', '>' and '&' literal, so that the files read like
// the payloads they carry (the decoded strings are the same either way).
func encodeEvent(t *testing.T, v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestEventsUpToDate(t *testing.T) {
	dir := filepath.Join(RepoRoot(t), "events")
	want := generateEvents(t)

	if *update {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, b := range want {
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for name, b := range want {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("%v (go test ./internal/testenv -run TestEvents -update writes it)", err)
			continue
		}
		if !bytes.Equal(got, b) {
			t.Errorf("events/%s differs from what testdata/ makes; run go test ./internal/testenv -run TestEvents -update", name)
		}
	}
	// A stale event would still be picked up by the function tests, which invoke every file.
	present, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	for _, p := range present {
		if _, ok := want[filepath.Base(p)]; !ok {
			t.Errorf("events/%s is not generated any more: delete it", filepath.Base(p))
		}
	}
}

func TestEventsSigned(t *testing.T) {
	root := RepoRoot(t)
	accepted := map[delivery.Message]bool{}
	for _, e := range webhookEvents {
		t.Run(e.file, func(t *testing.T) {
			var ev events.APIGatewayV2HTTPRequest
			readEvent(t, filepath.Join(root, "events", e.file), &ev)
			fixture, err := os.ReadFile(filepath.Join(root, "testdata", e.fixture))
			if err != nil {
				t.Fatal(err)
			}
			if ev.Version != "2.0" || ev.RequestContext.HTTP.Method != "POST" || ev.RawPath != routePath {
				t.Errorf("version %q, %s %s; want 2.0, POST %s", ev.Version, ev.RequestContext.HTTP.Method, ev.RawPath, routePath)
			}
			for name := range ev.Headers {
				if name != strings.ToLower(name) {
					t.Errorf("header %q is not lower case, as API Gateway delivers it", name)
				}
			}
			body := []byte(ev.Body)
			if ev.IsBase64Encoded {
				if body, err = base64.StdEncoding.DecodeString(ev.Body); err != nil {
					t.Fatal(err)
				}
			}
			if n := ev.Headers["content-length"]; n != strconv.Itoa(len(body)) {
				t.Errorf("content-length %s, body %d bytes", n, len(body))
			}
			payload := body
			if ev.Headers["content-type"] == "application/x-www-form-urlencoded" {
				form, err := url.ParseQuery(string(body))
				if err != nil {
					t.Fatal(err)
				}
				payload = []byte(form.Get("payload"))
			}
			if !bytes.Equal(payload, fixture) {
				t.Errorf("the payload is not testdata/%s byte for byte", e.fixture)
			}
			valid := webhook.NewVerifier(EventsSecret).Valid(ev.Headers["x-hub-signature-256"], body)
			if wantValid := e.secret == ""; valid != wantValid {
				t.Errorf("signature valid with %q: %v, want %v", EventsSecret, valid, wantValid)
			}
			if valid {
				accepted[delivery.Message{
					Key:   delivery.Key{HookID: ev.Headers["x-github-hook-id"], DeliveryID: ev.Headers["x-github-delivery"]},
					Event: ev.Headers["x-github-event"],
				}] = true
			}
		})
	}

	t.Run(processorEvent, func(t *testing.T) {
		var ev events.SQSEvent
		readEvent(t, filepath.Join(root, "events", processorEvent), &ev)
		referenced, malformed := 0, 0
		for _, r := range ev.Records {
			if r.Md5OfBody != md5Hex([]byte(r.Body)) {
				t.Errorf("record %s: md5OfBody does not match its body", r.MessageId)
			}
			var msg delivery.Message
			if err := json.Unmarshal([]byte(r.Body), &msg); err != nil {
				malformed++
				continue
			}
			if !accepted[msg] {
				t.Errorf("record %s refers to %+v, which no signed webhook event delivers", r.MessageId, msg)
			}
			referenced++
		}
		if referenced != len(accepted) || malformed != 1 {
			t.Errorf("%d records refer to deliveries and %d are malformed; want %d (every accepted delivery) and 1",
				referenced, malformed, len(accepted))
		}
	})
}

func readEvent(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test ./internal/testenv -run TestEvents -update writes it)", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
