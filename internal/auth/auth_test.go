package auth

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestTokens(t *testing.T) {
	if _, err := Parse("short"); err == nil || !strings.Contains(err.Error(), "token 1") {
		t.Fatalf("short token: %v", err)
	}
	if empty, _ := Parse(""); !empty.Empty() || empty.Role("") != RoleNone {
		t.Fatal("no tokens must refuse everything")
	}
	if g := Generate(); len(g) < MinTokenLength || Generate() == g {
		t.Fatal("generated tokens must be long and random")
	}
}

// TestRoles checks the role of each token, with the admin list alone (Parse) and with
// both lists (ParseRoles).
func TestRoles(t *testing.T) {
	for _, tc := range []struct {
		name  string
		parse func() (*Tokens, error)
		want  map[string]Role
	}{
		{"admin tokens", func() (*Tokens, error) { return Parse(" current-token-0123456789 , previous-token-0123456789,") }, map[string]Role{
			"current-token-0123456789":  RoleAdmin,
			"previous-token-0123456789": RoleAdmin,
			"current-token-012345678":   RoleNone,
			"":                          RoleNone,
			"CURRENT-TOKEN-0123456789":  RoleNone,
		}},
		{"admin and read tokens", func() (*Tokens, error) {
			return ParseRoles("admin-token-0123456789", " read-token-0123456789 ,read-token-9876543210")
		}, map[string]Role{
			"admin-token-0123456789": RoleAdmin,
			"read-token-0123456789":  RoleRead,
			"read-token-9876543210":  RoleRead,
			"read-token-012345678":   RoleNone,
			"":                       RoleNone,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tokens, err := tc.parse()
			if err != nil {
				t.Fatal(err)
			}
			for tok, want := range tc.want {
				if got := tokens.Role(tok); got != want {
					t.Errorf("Role(%q) = %v, want %v", tok, got, want)
				}
			}
		})
	}
	for _, tc := range []struct{ name, admin, read, want string }{
		{"short read token", "admin-token-0123456789", "short", "RUNNERHUB_API_READ_TOKENS: token 1 is shorter"},
		{"one token, two roles", "admin-token-0123456789", "admin-token-0123456789", "RUNNERHUB_API_READ_TOKENS: token 1 is also in RUNNERHUB_API_TOKENS"},
	} {
		if _, err := ParseRoles(tc.admin, tc.read); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	for _, r := range []Role{RoleRead, RoleAdmin} {
		if ParseRole(r.String()) != r {
			t.Errorf("ParseRole(%q) = %v", r.String(), ParseRole(r.String()))
		}
	}
}

func TestRequire(t *testing.T) {
	tokens, _ := ParseRoles("the-only-admin-token-123", "the-only-read-token-1234")
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("secret data")) })
	for _, tc := range []struct {
		header string
		write  bool
		want   int
	}{
		{"Bearer the-only-admin-token-123", false, 200},
		{"bearer the-only-admin-token-123", true, 200},
		{"Bearer the-only-read-token-1234", false, 200},
		{"Bearer the-only-read-token-1234", true, 403},
		{"Bearer wrong", false, 401},
		{"Bearer wrong", true, 401},
		{"Basic dXNlcjpwYXNz", false, 401},
		{"", false, 401},
	} {
		r := httptest.NewRequest("POST", "/api/pools/x", nil)
		if tc.header != "" {
			r.Header.Set("Authorization", tc.header)
		}
		w := httptest.NewRecorder()
		tokens.Require(ok, tc.write).ServeHTTP(w, r)
		if w.Code != tc.want {
			t.Errorf("%q write=%v: %d, want %d", tc.header, tc.write, w.Code, tc.want)
		}
		if tc.want != 200 && strings.Contains(w.Body.String(), "secret data") {
			t.Errorf("%q: %d leaks data: %s", tc.header, w.Code, w.Body)
		}
		if tc.want == 401 && w.Header().Get("WWW-Authenticate") == "" {
			t.Errorf("%q: 401 lacks WWW-Authenticate", tc.header)
		}
		if tc.want == 403 && (!strings.Contains(w.Body.String(), `"code":"forbidden"`) || !strings.Contains(w.Body.String(), "RUNNERHUB_API_TOKENS")) {
			t.Errorf("%q: 403 body %s, want code forbidden naming the admin tokens' variable", tc.header, w.Body)
		}
	}
}
