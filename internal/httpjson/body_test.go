package httpjson_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/runnerhub/webhooks/internal/httpjson"
)

func TestDecodeBody(t *testing.T) {
	optional := httpjson.BodyRules{MaxBytes: 32, Optional: true}
	required := httpjson.BodyRules{MaxBytes: 32}
	valueType := httpjson.BodyRules{MaxBytes: 32, WrongType: func(err *json.UnmarshalTypeError) string {
		return err.Field + " has the wrong type (" + err.Value + ")"
	}}
	type body struct {
		Name  string `json:"name"`
		Count int    `json:"count"`
	}
	cases := []struct {
		name        string
		rules       httpjson.BodyRules
		contentType string
		body        string
		want        body   // v after decoding, which starts as {"kept", 1}
		status      int    // 0: no error
		code        string // of the error
		message     string // of the error
	}{
		{"Object", required, "application/json", `{"name":"a","count":2}`, body{"a", 2}, 0, "", ""},
		{"ContentTypeParameters", required, "application/json; charset=utf-8", `{"name":"a"}`, body{"a", 1}, 0, "", ""},
		{"EmptyOptional", optional, "", "  \n", body{"kept", 1}, 0, "", ""},
		{"EmptyRequired", required, "application/json", "", body{"kept", 1},
			http.StatusBadRequest, "invalid_body", "a JSON body is required"},
		{"TooLarge", optional, "application/json", `{"name":"` + strings.Repeat("a", 32) + `"}`, body{"kept", 1},
			http.StatusRequestEntityTooLarge, "body_too_large", "the body exceeds 32 bytes"},
		{"NotJSON", required, "text/plain", `{"name":"a"}`, body{"kept", 1},
			http.StatusUnsupportedMediaType, "unsupported_content_type", "the body must be application/json"},
		{"UnknownField", required, "application/json", `{"nam":"a"}`, body{"kept", 1},
			http.StatusBadRequest, "invalid_body", `expected a JSON object with the documented fields: unknown field "nam"`},
		{"WrongType", required, "application/json", `{"count":"2"}`, body{"kept", 1},
			http.StatusBadRequest, "invalid_body", "expected a JSON object with the documented fields: count must be a number, not a JSON string"},
		{"WrongTypeDescribed", valueType, "application/json", `{"count":"2"}`, body{"kept", 1},
			http.StatusBadRequest, "invalid_body", "expected a JSON object with the documented fields: count has the wrong type (string)"},
		{"NotAnObject", required, "application/json", `[1]`, body{"kept", 1},
			http.StatusBadRequest, "invalid_body", "expected a JSON object with the documented fields: got a JSON array"},
		{"Malformed", required, "application/json", `{"name" "a"}`, body{"kept", 1},
			http.StatusBadRequest, "invalid_body", "expected a JSON object with the documented fields: not JSON (malformed at byte 9)"},
		{"EndsEarly", required, "application/json", `{"name":`, body{"kept", 1},
			http.StatusBadRequest, "invalid_body", "expected a JSON object with the documented fields: the JSON ends early"},
		{"PlainText", required, "application/json", `not json`, body{"kept", 1},
			http.StatusBadRequest, "invalid_body", "expected a JSON object with the documented fields: not JSON (malformed at byte 2)"},
		{"Trailing", required, "application/json", `{} {}`, body{"kept", 1},
			http.StatusBadRequest, "invalid_body", "the body must hold one JSON object and nothing after it"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/x", strings.NewReader(c.body))
			if c.contentType != "" {
				r.Header.Set("Content-Type", c.contentType)
			}
			v := body{"kept", 1}
			err := httpjson.DecodeBody(r, &v, c.rules)
			if c.status == 0 {
				if err != nil || v != c.want {
					t.Errorf("decoded %+v, %v; want %+v", v, err, c.want)
				}
				return
			}
			var p *httpjson.Problem
			if !errors.As(err, &p) || p.Status != c.status || p.Code != c.code || p.Message != c.message {
				t.Errorf("error %#v, want %d %s %q", err, c.status, c.code, c.message)
			}
		})
	}
}

func TestDecodeBodyDefaultLimit(t *testing.T) {
	r := httptest.NewRequest(http.MethodPost, "/x", strings.NewReader(`"`+strings.Repeat("a", httpjson.DefaultMaxBody)+`"`))
	r.Header.Set("Content-Type", "application/json")
	var v string
	var p *httpjson.Problem
	if err := httpjson.DecodeBody(r, &v, httpjson.BodyRules{}); !errors.As(err, &p) || p.Status != http.StatusRequestEntityTooLarge {
		t.Errorf("error %v, want 413", err)
	}
}
