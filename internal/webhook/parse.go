// Package webhook turns an HTTP request from GitHub into a verified delivery: it checks
// the headers, the X-Hub-Signature-256 HMAC over the exact bytes received, the content
// type (JSON or form-encoded), and that the payload is well-formed JSON, and it extracts
// the fields ingest records without decoding the whole payload.
package webhook

import (
	"mime"
	"net/http"
	"net/url"
)

// Headers are the request headers a delivery is judged by.
type Headers struct {
	Event       string // X-GitHub-Event
	DeliveryID  string // X-GitHub-Delivery
	HookID      string // X-GitHub-Hook-ID (optional)
	TargetType  string // X-GitHub-Hook-Installation-Target-Type (optional)
	TargetID    string // X-GitHub-Hook-Installation-Target-ID (optional)
	Signature   string // X-Hub-Signature-256
	ContentType string
}

// HeadersFrom reads the delivery headers of r.
func HeadersFrom(h http.Header) Headers {
	return Headers{
		Event:       h.Get("X-GitHub-Event"),
		DeliveryID:  h.Get("X-GitHub-Delivery"),
		HookID:      h.Get("X-GitHub-Hook-ID"),
		TargetType:  h.Get("X-GitHub-Hook-Installation-Target-Type"),
		TargetID:    h.Get("X-GitHub-Hook-Installation-Target-ID"),
		Signature:   h.Get("X-Hub-Signature-256"),
		ContentType: h.Get("Content-Type"),
	}
}

// Delivery is a verified, well-formed delivery.
type Delivery struct {
	Headers
	Summary
	// Payload is the JSON document: the body itself, or the form's payload field.
	Payload []byte
}

// Rejection says why a delivery was refused; Reason is a stable label for metrics and
// logs, Message is safe to show the sender.
type Rejection struct {
	Status  int
	Reason  string
	Message string
}

func (r *Rejection) Error() string { return r.Reason + ": " + r.Message }

func reject(status int, reason, message string) *Rejection {
	return &Rejection{Status: status, Reason: reason, Message: message}
}

// Parser verifies and parses deliveries.
type Parser struct {
	Verifier *Verifier
	// AllowUnsigned accepts deliveries without a valid signature when no secret is
	// configured. Development only: without it, no secret means every delivery is refused.
	AllowUnsigned bool
}

// Admission is a request whose headers passed Admit: what is left to check needs the body.
type Admission struct {
	Headers
	form bool // the body is application/x-www-form-urlencoded, the JSON in its payload field
}

// Admit checks everything a delivery's headers can tell before its body is read: the
// event and delivery id, a signature to check (or the development switch when no secret
// is configured) and the content type. A request it refuses must not be read at all, so
// that unauthenticated senders cannot make the service buffer anything.
func (p *Parser) Admit(h Headers) (Admission, error) {
	if err := checkHeaders(h); err != nil {
		return Admission{}, err
	}
	if err := p.checkSignaturePresent(h.Signature); err != nil {
		return Admission{}, err
	}
	form, err := isForm(h.ContentType)
	if err != nil {
		return Admission{}, err
	}
	return Admission{Headers: h, form: form}, nil
}

// Verify checks an admitted delivery's body: the signature over the exact bytes, then the
// payload itself, so nothing is decoded before it is trusted.
func (p *Parser) Verify(a Admission, body []byte) (Delivery, error) {
	d := Delivery{Headers: a.Headers}
	if p.Verifier.Enabled() && !p.Verifier.Valid(a.Signature, body) {
		return d, reject(http.StatusUnauthorized, "bad_signature", "X-Hub-Signature-256 does not match the body")
	}
	d.Payload = body
	if a.form {
		values, err := url.ParseQuery(string(body))
		if err != nil || !values.Has("payload") {
			return d, reject(http.StatusBadRequest, "bad_form", "form-encoded deliveries must carry a payload field")
		}
		d.Payload = []byte(values.Get("payload"))
	}
	var err error
	if d.Summary, err = Summarize(d.Payload); err != nil {
		return d, reject(http.StatusBadRequest, "malformed_json", err.Error())
	}
	return d, nil
}

// Parse is Admit and Verify in one, for a body already in memory.
func (p *Parser) Parse(h Headers, body []byte) (Delivery, error) {
	a, err := p.Admit(h)
	if err != nil {
		return Delivery{Headers: h}, err
	}
	return p.Verify(a, body)
}

func (p *Parser) checkSignaturePresent(sig string) error {
	switch {
	case !p.Verifier.Enabled() && p.AllowUnsigned:
		return nil
	case !p.Verifier.Enabled():
		return reject(http.StatusServiceUnavailable, "no_secret", "no webhook secret is configured; refusing deliveries")
	case sig == "":
		return reject(http.StatusUnauthorized, "missing_signature", "X-Hub-Signature-256 header is required")
	}
	if _, ok := decodeSignature(sig); !ok {
		return reject(http.StatusUnauthorized, "bad_signature", "X-Hub-Signature-256 must be sha256= and 64 hex digits")
	}
	return nil
}

func isForm(contentType string) (bool, error) {
	mediaType, _, err := mime.ParseMediaType(contentType)
	switch {
	case contentType == "":
		return false, reject(http.StatusUnsupportedMediaType, "unsupported_content_type", "Content-Type is required: application/json or application/x-www-form-urlencoded")
	case err != nil:
		return false, reject(http.StatusUnsupportedMediaType, "unsupported_content_type", "Content-Type is not a valid media type")
	case mediaType == "application/json":
		return false, nil
	case mediaType == "application/x-www-form-urlencoded":
		return true, nil
	}
	return false, reject(http.StatusUnsupportedMediaType, "unsupported_content_type", "Content-Type must be application/json or application/x-www-form-urlencoded")
}

// Header value limits: GitHub's event and target-type names are short words, its
// delivery ids GUIDs (36 bytes; redeliveries keep them), its hook and target ids 64-bit
// numbers (at most 20 digits).
const (
	maxWordLength = 64
	// MaxDeliveryIDLength is the longest X-GitHub-Delivery accepted.
	MaxDeliveryIDLength = 128
	maxIDDigits         = 20
)

func checkHeaders(h Headers) error {
	switch {
	case h.Event == "":
		return reject(http.StatusBadRequest, "missing_event", "X-GitHub-Event header is required")
	case !validToken(h.Event, maxWordLength, false):
		return reject(http.StatusBadRequest, "bad_event", "X-GitHub-Event must be an event name such as workflow_job")
	case h.DeliveryID == "":
		return reject(http.StatusBadRequest, "missing_delivery", "X-GitHub-Delivery header is required")
	case !validToken(h.DeliveryID, MaxDeliveryIDLength, true):
		return reject(http.StatusBadRequest, "bad_delivery", "X-GitHub-Delivery must be 1-128 letters, digits, '-', '_' or '.'")
	case h.HookID != "" && !validDigits(h.HookID):
		return reject(http.StatusBadRequest, "bad_hook_id", "X-GitHub-Hook-ID must be a number")
	case h.TargetType != "" && !validToken(h.TargetType, maxWordLength, false):
		return reject(http.StatusBadRequest, "bad_target_type", "X-GitHub-Hook-Installation-Target-Type must be a word such as repository")
	case h.TargetID != "" && !validDigits(h.TargetID):
		return reject(http.StatusBadRequest, "bad_target_id", "X-GitHub-Hook-Installation-Target-ID must be a number")
	}
	return nil
}

// validToken accepts lower-case words with underscores (event names) or, with ids set,
// also upper case, digits, '-' and '.' (delivery GUIDs).
func validToken(s string, max int, ids bool) bool {
	if len(s) == 0 || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := ('a' <= c && c <= 'z') || c == '_' ||
			(ids && (('A' <= c && c <= 'Z') || ('0' <= c && c <= '9') || c == '-' || c == '.'))
		if !ok {
			return false
		}
	}
	return true
}

func validDigits(s string) bool {
	if len(s) == 0 || len(s) > maxIDDigits {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
