package fakegithub

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"crypto/rand"
	"encoding/hex"

	"github.com/golang-jwt/jwt/v4"
)

// AddInstallation installs the fake App on owner (an organization or a user) and
// returns the installation id.
func (s *Server) AddInstallation(owner string) int64 {
	id := s.id()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.installations[owner] = id
	return id
}

// TokensIssued counts the installation tokens minted so far.
func (s *Server) TokensIssued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tokensIssued
}

// checkJWT accepts the App's JWT: RS256, signed with the App's key, issued by the App,
// not expired, and lasting at most ten minutes (GitHub's rules).
func (s *Server) checkJWT(r *http.Request) bool {
	raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return false
	}
	claims := &jwt.RegisteredClaims{}
	tok, err := jwt.ParseWithClaims(raw, claims, func(t *jwt.Token) (any, error) {
		if t.Method != jwt.SigningMethodRS256 {
			return nil, jwt.ErrSignatureInvalid
		}
		return &s.appKey.PublicKey, nil
	})
	if err != nil || !tok.Valid || claims.ExpiresAt == nil || claims.IssuedAt == nil {
		return false
	}
	if claims.ExpiresAt.Sub(claims.IssuedAt.Time) > 11*time.Minute {
		return false
	}
	return claims.Issuer == strconv.FormatInt(s.AppID, 10)
}

// checkToken accepts the personal access token, or an unexpired installation token of
// an installation that covers the owner the request names.
func (s *Server) checkToken(r *http.Request) bool {
	h := r.Header.Get("Authorization")
	raw, ok := strings.CutPrefix(h, "token ")
	if !ok {
		if raw, ok = strings.CutPrefix(h, "Bearer "); !ok {
			return false
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Token != "" && raw == s.Token {
		return true
	}
	it, ok := s.tokens[raw]
	if !ok || time.Now().After(it.expires) {
		return false
	}
	owner := r.PathValue("owner")
	if owner == "" {
		owner = r.PathValue("org")
	}
	return owner == "" || s.installations[owner] == it.installation
}

func (s *Server) installationRoutes(mux *http.ServeMux) {
	s.route(mux, "POST", "/app/installations/{installation_id}/access_tokens", authJWT, func(w *recorder, r *http.Request) {
		id, _ := pathInt(r, "installation_id")
		if !s.hasInstallation(id) {
			w.fail(http.StatusNotFound, "Not Found")
			return
		}
		buf := make([]byte, 20)
		_, _ = rand.Read(buf)
		token := "ghs_" + hex.EncodeToString(buf)
		expires := time.Now().Add(s.TokenTTL)
		s.mu.Lock()
		s.tokens[token] = installationToken{installation: id, expires: expires}
		s.tokensIssued++
		s.mu.Unlock()
		w.json(http.StatusCreated, map[string]any{"token": token, "expires_at": timestamp(expires),
			"permissions": map[string]string{"actions": "read", "administration": "write"}, "repository_selection": "all"})
	})
	find := func(w *recorder, owner string) {
		s.mu.Lock()
		id, ok := s.installations[owner]
		s.mu.Unlock()
		if !ok {
			w.fail(http.StatusNotFound, "Not Found")
			return
		}
		w.json(http.StatusOK, s.installationJSON(id, owner))
	}
	s.route(mux, "GET", "/repos/{owner}/{repo}/installation", authJWT, func(w *recorder, r *http.Request) { find(w, r.PathValue("owner")) })
	s.route(mux, "GET", "/orgs/{org}/installation", authJWT, func(w *recorder, r *http.Request) { find(w, r.PathValue("org")) })
}

func (s *Server) hasInstallation(id int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range s.installations {
		if v == id {
			return true
		}
	}
	return false
}

func (s *Server) installationJSON(id int64, owner string) map[string]any {
	now := timestamp(time.Now())
	return map[string]any{
		"id": id, "app_id": s.AppID, "app_slug": "runnerhub-test", "client_id": "Iv1.fake",
		"target_id": id + 1, "target_type": "Organization", "single_file_name": nil,
		"repository_selection": "all",
		"access_tokens_url":    s.URL + "/app/installations/" + strconv.FormatInt(id, 10) + "/access_tokens",
		"html_url":             "https://github.com/organizations/" + owner + "/settings/installations/" + strconv.FormatInt(id, 10),
		"repositories_url":     s.URL + "/installation/repositories",
		"events":               []string{"workflow_job"}, "account": nil,
		"permissions": map[string]string{"actions": "read"}, "created_at": now, "updated_at": now,
		"suspended_by": nil, "suspended_at": nil,
	}
}

func readBody(r *http.Request) ([]byte, error) {
	if r.Body == nil {
		return nil, nil
	}
	b, err := io.ReadAll(r.Body)
	r.Body = readCloser(b)
	return b, err
}

func readCloser(b []byte) io.ReadCloser { return io.NopCloser(bytes.NewReader(b)) }
