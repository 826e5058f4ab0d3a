package fakegithub

import (
	"net/http"
	"strings"
	"testing"
)

// The validation is what keeps the fake honest: an answer that breaks the description,
// or a request it does not allow, must be caught.
func TestAnswersOutsideTheDescriptionAreCaught(t *testing.T) {
	for _, tc := range []struct {
		name, method, path, body string
		setup                    func(s *Server)
		want                     string
	}{
		{"job with a status GitHub does not have", "GET", "/repos/octo/app/actions/jobs/7", "",
			func(s *Server) { s.PutJob("octo/app", Job{ID: 7, Status: "stuck", Labels: []string{"x"}}) }, "response 200"},
		{"JIT request without labels", "POST", "/orgs/octo/actions/runners/generate-jitconfig", `{"name":"r","runner_group_id":1,"labels":[]}`,
			func(s *Server) {}, ""},
		{"JIT request with labels", "POST", "/orgs/octo/actions/runners/generate-jitconfig", `{"name":"r","runner_group_id":1,"labels":["a"]}`,
			func(s *Server) {}, ""},
		{"JIT request with 101 labels", "POST", "/orgs/octo/actions/runners/generate-jitconfig",
			`{"name":"r","runner_group_id":1,"labels":[` + strings.Repeat(`"a",`, 100) + `"a"]}`, func(s *Server) {}, "request POST"},
		{"redelivery request with an id that is no integer", "POST", "/orgs/octo/hooks/1/deliveries/abc/attempts", ``,
			func(s *Server) { s.AddHook("org/octo/1", 1, "x", nil) }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := Start(t)
			s.Token = "pat"
			tc.setup(s)
			req, _ := http.NewRequest(tc.method, s.URL+tc.path, strings.NewReader(tc.body))
			req.Header.Set("Authorization", "Bearer pat")
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			s.mu.Lock()
			got := strings.Join(s.violations, "\n")
			s.violations = nil // asserted here, not at cleanup
			s.mu.Unlock()
			if tc.want == "" && got != "" {
				t.Fatalf("unexpected violation: %s", got)
			}
			if tc.want != "" && !strings.Contains(got, tc.want) {
				t.Fatalf("violations %q, want one about %q", got, tc.want)
			}
		})
	}
}

func TestOnlyOperationsOfTheDescriptionAreServed(t *testing.T) {
	s := Start(t)
	tb := &fatalRecorder{TB: t}
	s.t = tb
	func() {
		defer func() { _ = recover() }()
		s.route(http.NewServeMux(), "GET", "/repos/{owner}/{repo}/secrets", authToken, nil)
	}()
	if !tb.failed {
		t.Fatal("an operation missing from the excerpt was registered")
	}
}

type fatalRecorder struct {
	testing.TB
	failed bool
}

func (f *fatalRecorder) Fatalf(string, ...any) { f.failed = true; panic("fatal") }
