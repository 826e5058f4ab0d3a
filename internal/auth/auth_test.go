package auth

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestTokens(t *testing.T) {
	tokens, err := Parse(" current-token-0123456789 , previous-token-0123456789,")
	if err != nil {
		t.Fatal(err)
	}
	for tok, want := range map[string]bool{
		"current-token-0123456789":  true,
		"previous-token-0123456789": true,
		"current-token-012345678":   false,
		"":                          false,
		"CURRENT-TOKEN-0123456789":  false,
	} {
		if got := tokens.Valid(tok); got != want {
			t.Errorf("Valid(%q) = %v", tok, got)
		}
	}
	if _, err := Parse("short"); err == nil || !strings.Contains(err.Error(), "token 1") {
		t.Fatalf("short token: %v", err)
	}
	if empty, _ := Parse(""); !empty.Empty() || empty.Valid("") {
		t.Fatal("no tokens must refuse everything")
	}
	if g := Generate(); len(g) < MinTokenLength || Generate() == g {
		t.Fatal("generated tokens must be long and random")
	}
}

func TestRequire(t *testing.T) {
	tokens, _ := Parse("the-only-valid-token-123")
	h := tokens.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("secret data")) }))
	for header, want := range map[string]int{
		"Bearer the-only-valid-token-123": 200,
		"bearer the-only-valid-token-123": 200,
		"Bearer wrong":                    401,
		"Basic dXNlcjpwYXNz":              401,
		"":                                401,
	} {
		r := httptest.NewRequest("GET", "/api/jobs", nil)
		if header != "" {
			r.Header.Set("Authorization", header)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != want {
			t.Errorf("%q: %d, want %d", header, w.Code, want)
		}
		if want == 401 && (strings.Contains(w.Body.String(), "secret data") || w.Header().Get("WWW-Authenticate") == "") {
			t.Errorf("%q: 401 leaks data or lacks WWW-Authenticate: %s", header, w.Body)
		}
	}
}
