package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// GitHub's published test vector ("Validating webhook deliveries").
const (
	vectorSecret    = "It's a Secret to Everybody"
	vectorBody      = "Hello, World!"
	vectorSignature = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
)

func TestGitHubSignatureVector(t *testing.T) {
	if got := Sign(vectorSecret, []byte(vectorBody)); got != vectorSignature {
		t.Fatalf("Sign = %s, want %s", got, vectorSignature)
	}
	v := NewVerifier(vectorSecret)
	if !v.Valid(vectorSignature, []byte(vectorBody)) {
		t.Fatal("the published vector does not verify")
	}
	upper := "sha256=" + strings.ToUpper(strings.TrimPrefix(vectorSignature, "sha256="))
	if !v.Valid(upper, []byte(vectorBody)) {
		t.Fatal("upper-case hex should verify: hex is case-insensitive")
	}
}

func TestVerifierRejects(t *testing.T) {
	v := NewVerifier(vectorSecret)
	body := []byte(vectorBody)
	for name, sig := range map[string]string{
		"empty":           "",
		"no prefix":       strings.TrimPrefix(vectorSignature, "sha256="),
		"sha1 prefix":     "sha1=" + strings.TrimPrefix(vectorSignature, "sha256="),
		"short":           vectorSignature[:len(vectorSignature)-2],
		"long":            vectorSignature + "00",
		"not hex":         "sha256=" + strings.Repeat("zz", 32),
		"one bit off":     vectorSignature[:len(vectorSignature)-1] + "6",
		"other secret":    Sign("another secret", body),
		"signature of ''": Sign(vectorSecret, nil),
	} {
		if v.Valid(sig, body) {
			t.Errorf("%s: %q verified", name, sig)
		}
	}
	if NewVerifier().Valid(Sign("", body), body) {
		t.Error("a verifier without secrets accepted a signature")
	}
}

func TestVerifierRotation(t *testing.T) {
	body := []byte(`{"zen":"Keep it logically awesome."}`)
	cases := []struct {
		name    string
		current string
		prev    string
		signer  string
		want    bool
	}{
		{"current secret", "new-secret", "old-secret", "new-secret", true},
		{"previous secret during rotation", "new-secret", "old-secret", "old-secret", true},
		{"previous secret after rotation", "new-secret", "", "old-secret", false},
		{"unknown secret", "new-secret", "old-secret", "stranger", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := NewVerifier(c.current, c.prev).Valid(Sign(c.signer, body), body); got != c.want {
				t.Fatalf("Valid = %v, want %v", got, c.want)
			}
		})
	}
}

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSummarizeFixtures(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("..", "..", "testdata", "*.json"))
	if len(files) == 0 {
		t.Fatal("no fixtures in testdata/")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			body := readFixture(t, filepath.Base(f))
			got, err := Summarize(body)
			if err != nil {
				t.Fatal(err)
			}
			var want struct {
				Action     string `json:"action"`
				Repository struct {
					FullName string `json:"full_name"`
				} `json:"repository"`
			}
			if err := json.Unmarshal(body, &want); err != nil {
				t.Fatal(err)
			}
			if got.Action != want.Action || got.Repository != want.Repository.FullName {
				t.Fatalf("got %+v, want action %q repository %q", got, want.Action, want.Repository.FullName)
			}
		})
	}
}

// scannerCases are checked against encoding/json: the scanner must accept exactly what it accepts.
var scannerCases = []string{
	`{}`, ` { } `, `{"a":1}`, `{"a":-0.5e+10}`, `{"a":[1,2,{"b":null}],"c":true,"d":false}`,
	`{"action":"queued","repository":{"full_name":"octo/repo"}}`,
	`{"action":"q\u0075eued","repository":{"full_name":"octo\/repo"}}`,
	`{"repository":"not an object"}`, `{"action":5}`, `{"repository":{"full_name":7}}`,
	`{"\u0061ction":"escaped key"}`, `{"a":"\ud83d\ude00"}`,
	``, ` `, `[]`, `"str"`, `1`, `null`, `{`, `{"a"}`, `{"a":}`, `{"a":1,}`, `{,}`,
	`{"a":01}`, `{"a":1.}`, `{"a":.5}`, `{"a":1e}`, `{"a":-}`, `{"a":tru}`, `{"a":nul}`,
	`{"a":"x\qy"}`, `{"a":"\u12"}`, `{"a":"\u12g4"}`, "{\"a\":\"tab\there\"}", `{"a":"unterminated}`,
	`{"a":1}{}`, `{"a":1} x`, `{"a":[1,2}`, `{"a":[1 2]}`, `{"a" 1}`, `{1:2}`,
	`{"a":"` + strings.Repeat("x", 100) + `\"` + strings.Repeat("y", 37) + `"}`,
	`{"a":` + strings.Repeat("[", 300) + strings.Repeat("]", 300) + `}`,
	// encoding/json's depth limit, 10,000 levels with the top-level object: at it, and past it.
	`{"a":` + strings.Repeat("[", 9999) + strings.Repeat("]", 9999) + `}`,
	`{"a":` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + `}`,
	`{"a":` + strings.Repeat(`{"a":`, 9998) + `1` + strings.Repeat("}", 9998) + `}`,
	`{"a":` + strings.Repeat(`{"a":`, 9999) + `1` + strings.Repeat("}", 9999) + `}`,
	// Of duplicate names the last member counts, whole, as in encoding/json's map.
	`{"action":"queued","action":"completed"}`, `{"action":"queued","action":5}`, `{"action":"queued","action":null}`,
	`{"repository":{"full_name":"a/b"},"repository":{"full_name":"evil/other"}}`,
	`{"repository":{"full_name":"a/b"},"repository":{"name":"other"}}`,
	`{"repository":{"full_name":"a/b"},"repository":null}`,
	`{"repository":{"full_name":"a/b","full_name":"c/d"}}`, `{"repository":{"full_name":"a/b","full_name":1}}`,
	// Valid JSON whose number overflows a float64: encoding/json's map refuses it, its
	// grammar does not, and neither may ingest (the processor never reads such a field).
	`{"a":1e700}`, `{"action":"queued","n":-1e400}`,
	// Names match exactly.
	`{"Action":"completed","action":"queued","Repository":{"full_name":"evil/other"},"repository":{"full_name":"a/b"}}`,
}

func TestSummarizeAgreesWithEncodingJSON(t *testing.T) {
	for _, c := range scannerCases {
		checkAgainstEncodingJSON(t, []byte(c))
		if _, err := Summarize([]byte(c)); err != nil && !errors.Is(err, ErrMalformed) {
			t.Errorf("%.60q: error %v does not wrap ErrMalformed", c, err)
		}
	}
}

// TestSummarizeAtEveryOffset moves awkward strings across the scanner's 8-byte
// words, 64-byte bitmap blocks and 4 KB windows, and across the end of the body, and
// holds the result to encoding/json each time.
func TestSummarizeAtEveryOffset(t *testing.T) {
	fragments := []string{
		`"action":"queued","repository":{"full_name":"octo/repo"}`,
		`"a":"x\"y"`, `"a":"\\"`, `"a":"#\"#"`, `"a":"]\\]"`, `"a":"\u0041\u00e9"`,
		`"k\"ey":1`, `"a":{"k\"ey":1}`, `"a":{"k\qey":1}`, `"repository":{"full\u005fname":"o/r"}`, "\"a\":\"\x7f\x80\xff\"", "\"a\":\"tab\there\"", "\"a\":\"nul\x00\"",
		"\"action\":\"\x84\"", `"a":"\q"`, `"a":"\u00g0"`, `"a":"unterminated`, `"a":"ends in a backslash\`,
	}
	var offsets []int
	for _, around := range []int{0, 64, 4096, 8192} {
		for n := max(around-40, 0); n < around+40; n++ {
			offsets = append(offsets, n)
		}
	}
	for _, frag := range fragments {
		for _, n := range offsets {
			doc := `{"pad":"` + strings.Repeat("p", n) + `",` + frag + `}`
			for _, body := range []string{doc, doc[:len(doc)-1], doc + strings.Repeat(" ", n%9)} {
				checkAgainstEncodingJSON(t, []byte(body))
			}
		}
	}
}

// checkAgainstEncodingJSON fails t unless Summarize accepts exactly what
// encoding/json accepts as an object and reads the same summary fields from it.
func checkAgainstEncodingJSON(t *testing.T, body []byte) {
	t.Helper()
	got, err := Summarize(body)
	want, ok := decodeObject(body)
	if !ok {
		if err == nil {
			t.Fatalf("%.80q...: accepted, encoding/json refuses it", body)
		}
		return
	}
	if err != nil {
		t.Fatalf("%.80q...: %v, encoding/json accepts it", body, err)
	}
	action, _ := want["action"].(string)
	repo, _ := want["repository"].(map[string]any)
	fullName, _ := repo["full_name"].(string)
	if got.Action != action || got.Repository != fullName {
		t.Fatalf("%.80q...: got %+v, encoding/json reads action %q repository %q", body, got, action, fullName)
	}
}

// decodeObject is encoding/json's reading of body as an object, if it is one. Numbers stay
// json.Number: 1e700 is valid JSON, though it overflows the float64 a map would hold.
func decodeObject(body []byte) (map[string]any, bool) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var doc map[string]any
	if !json.Valid(body) || dec.Decode(&doc) != nil || doc == nil {
		return nil, false // not one JSON document, or null, or not an object
	}
	return doc, true
}

func TestSummarizeEscapes(t *testing.T) {
	r, err := Summarize([]byte(`{"action":"q\u0075eued","repository":{"full_name":"octo\/repo","name":"x"}}`))
	if err != nil || r.Action != "queued" || r.Repository != "octo/repo" {
		t.Fatalf("got %+v, %v", r, err)
	}
}

func signedHeaders(secret string, body []byte) Headers {
	return Headers{
		Event: "workflow_job", DeliveryID: "72d3162e-cc78-11e3-81ab-4c9367dc0958", HookID: "12345",
		TargetType: "repository", TargetID: "186853002",
		Signature: Sign(secret, body), ContentType: "application/json",
	}
}

func TestParse(t *testing.T) {
	const secret = "s3cret-for-tests"
	body := readFixture(t, "workflow_job.queued.json")
	form := []byte("payload=" + url.QueryEscape(string(body)))
	p := &Parser{Verifier: NewVerifier(secret)}
	cases := []struct {
		name       string
		edit       func(h *Headers)
		body       []byte
		wantStatus int
		wantReason string
	}{
		{name: "valid json", body: body},
		{name: "json with charset", body: body, edit: func(h *Headers) { h.ContentType = "application/json; charset=utf-8" }},
		{name: "valid form", body: form, edit: func(h *Headers) { h.ContentType = "application/x-www-form-urlencoded" }},
		{name: "no hook id", body: body, edit: func(h *Headers) { h.HookID = "" }},
		{name: "missing event", body: body, edit: func(h *Headers) { h.Event = "" }, wantStatus: 400, wantReason: "missing_event"},
		{name: "bad event", body: body, edit: func(h *Headers) { h.Event = "Workflow Job" }, wantStatus: 400, wantReason: "bad_event"},
		{name: "missing delivery", body: body, edit: func(h *Headers) { h.DeliveryID = "" }, wantStatus: 400, wantReason: "missing_delivery"},
		{name: "bad delivery", body: body, edit: func(h *Headers) { h.DeliveryID = "../../etc" }, wantStatus: 400, wantReason: "bad_delivery"},
		{name: "long delivery", body: body, edit: func(h *Headers) { h.DeliveryID = strings.Repeat("a", 129) }, wantStatus: 400, wantReason: "bad_delivery"},
		{name: "bad hook id", body: body, edit: func(h *Headers) { h.HookID = "12x" }, wantStatus: 400, wantReason: "bad_hook_id"},
		{name: "bad target id", body: body, edit: func(h *Headers) { h.TargetID = "-1" }, wantStatus: 400, wantReason: "bad_target_id"},
		{name: "missing content type", body: body, edit: func(h *Headers) { h.ContentType = "" }, wantStatus: 415, wantReason: "unsupported_content_type"},
		{name: "xml", body: body, edit: func(h *Headers) { h.ContentType = "application/xml" }, wantStatus: 415, wantReason: "unsupported_content_type"},
		{name: "missing signature", body: body, edit: func(h *Headers) { h.Signature = "" }, wantStatus: 401, wantReason: "missing_signature"},
		{name: "wrong signature", body: body, edit: func(h *Headers) { h.Signature = Sign("wrong", body) }, wantStatus: 401, wantReason: "bad_signature"},
		{name: "form without payload", body: []byte("other=1"), edit: func(h *Headers) { h.ContentType = "application/x-www-form-urlencoded" }, wantStatus: 400, wantReason: "bad_form"},
		{name: "malformed json", body: []byte(`{"action":`), wantStatus: 400, wantReason: "malformed_json"},
		{name: "json array", body: []byte(`[1]`), wantStatus: 400, wantReason: "malformed_json"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := signedHeaders(secret, c.body)
			if c.edit != nil {
				c.edit(&h)
			}
			d, err := p.Parse(h, c.body)
			if c.wantStatus == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if d.Action != "queued" || d.Repository == "" || string(d.Payload) != string(body) {
					t.Fatalf("parsed %+v / payload of %d bytes", d.Summary, len(d.Payload))
				}
				return
			}
			var rej *Rejection
			if !errors.As(err, &rej) || rej.Status != c.wantStatus || rej.Reason != c.wantReason {
				t.Fatalf("err = %v, want %d %s", err, c.wantStatus, c.wantReason)
			}
		})
	}
}

func TestParseFailsClosedWithoutSecret(t *testing.T) {
	body := []byte(`{"zen":"x"}`)
	h := signedHeaders("", body)
	_, err := (&Parser{Verifier: NewVerifier()}).Parse(h, body)
	var rej *Rejection
	if !errors.As(err, &rej) || rej.Status != http.StatusServiceUnavailable {
		t.Fatalf("no secret: err = %v, want 503 no_secret", err)
	}
	h.Signature = ""
	if _, err := (&Parser{Verifier: NewVerifier(), AllowUnsigned: true}).Parse(h, body); err != nil {
		t.Fatalf("development switch: %v", err)
	}
	if _, err := (&Parser{Verifier: NewVerifier("set"), AllowUnsigned: true}).Parse(h, body); err == nil {
		t.Fatal("the development switch must not relax verification when a secret is set")
	}
}
