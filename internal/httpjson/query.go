package httpjson

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Query reads query parameters and collects every problem, so that one 400 names all of
// them rather than making the caller fix one at a time. Parameters it is not asked
// about are ignored. Each reader returns its default when the parameter is absent or
// wrong; Err says whether any was wrong.
type Query struct {
	values   url.Values
	problems []string
}

// NewQuery reads r's query parameters.
func NewQuery(r *http.Request) *Query { return &Query{values: r.URL.Query()} }

// Failf records a problem, for checks that span parameters (such as two that cannot be
// combined).
func (q *Query) Failf(format string, args ...any) {
	q.problems = append(q.problems, fmt.Sprintf(format, args...))
}

// Lookup returns the parameter's value and whether it was given; a parameter given
// twice is a problem (which one was meant?).
func (q *Query) Lookup(name string) (string, bool) {
	vs, ok := q.values[name]
	switch {
	case !ok:
		return "", false
	case len(vs) > 1:
		q.Failf("%s is given %d times; give it once", name, len(vs))
		return "", false
	}
	return vs[0], true
}

// Get is Lookup for parameters where an empty value means the same as none.
func (q *Query) Get(name string) string {
	v, _ := q.Lookup(name)
	return v
}

// Values returns every value given for name, unchecked: for a request's fingerprint,
// where each reader's verdict does not matter.
func (q *Query) Values(name string) []string { return q.values[name] }

// Has reports whether the parameter was given at all, even twice.
func (q *Query) Has(name string) bool { _, ok := q.values[name]; return ok }

// Int returns the parameter as an integer in [lo, hi], def when absent. An empty value
// is given, and wrong.
func (q *Query) Int(name string, def, lo, hi int) int {
	v, ok := q.Lookup(name)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		q.Failf("%s must be an integer from %d to %d, not %q", name, lo, hi, Clip(v))
		return def
	}
	return n
}

// Limit returns the page size, parameter "limit", as a whole number from 1 to max; def
// when absent or empty.
func (q *Query) Limit(def, max int) int {
	v := q.Get("limit")
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > max {
		q.Failf("limit must be a whole number from 1 to %d, not %q", max, Clip(v))
		return def
	}
	return n
}

// Bool returns the parameter as true or false, nil when absent. Only "true" and "false"
// are accepted: strconv's "1", "t" or "TRUE" would be a second spelling to support.
func (q *Query) Bool(name string) *bool {
	v, ok := q.Lookup(name)
	if !ok {
		return nil
	}
	if v != "true" && v != "false" {
		q.Failf("%s must be true or false, not %q", name, Clip(v))
		return nil
	}
	b := v == "true"
	return &b
}

// Match returns the parameter when it matches pattern ("" when absent); what says what
// it must be, for the message.
func (q *Query) Match(name string, pattern *regexp.Regexp, what string) string {
	v, ok := q.Lookup(name)
	if !ok {
		return ""
	}
	if !pattern.MatchString(v) {
		q.Failf("%s must be %s, not %q", name, what, Clip(v))
		return ""
	}
	return v
}

// Time returns the parameter as an RFC 3339 time, zero when absent.
func (q *Query) Time(name string) time.Time {
	v, ok := q.Lookup(name)
	if !ok {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		q.Failf("%s must be an RFC 3339 time such as 2024-05-01T12:00:00Z, not %q", name, Clip(v))
		return time.Time{}
	}
	return t
}

// Check returns the parameter if validate accepts it ("" when absent or empty). The
// validator's error is the problem as is, so it must name the parameter and say what
// it must be.
func (q *Query) Check(name string, validate func(string) error) string {
	v := q.Get(name)
	if v == "" {
		return ""
	}
	if err := validate(v); err != nil {
		q.Failf("%v", err)
		return ""
	}
	return v
}

// Err returns the 400 naming every problem, or nil.
func (q *Query) Err() error {
	if len(q.problems) == 0 {
		return nil
	}
	return BadRequest("invalid_parameter", strings.Join(q.problems, "; "))
}

// Clip keeps values echoed in messages short: the message is for a person, not a mirror.
func Clip(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	return s[:max] + "…"
}
