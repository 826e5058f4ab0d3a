package standalone

import (
	"slices"
	"strings"
	"testing"

	"github.com/runnerhub/webhooks/internal/testenv"
)

// TestOpenAPIDescribesEveryRoute holds openapi.yaml to the local stack's router, which
// mounts the routes of every area (ingest, metrics, deliveries, fleet, live updates,
// dashboard): every route served is documented, every documented operation is served,
// and an operation is public in the document exactly when the router serves it without
// a token.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	ops := testenv.OpenAPI(t)
	s, err := Open(testConfig(t, t.TempDir(), nil), quietLog())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	documented := map[string]bool{} // "METHOD /path" → public
	for _, op := range ops {
		documented[op.Method+" "+op.Path] = op.Public
	}
	served := map[string]bool{}
	for _, r := range s.Routes {
		served[r.Method+" "+documentedPath(r.Pattern)] = r.Public
	}
	for _, route := range sortedKeys(served) {
		public, ok := documented[route]
		switch {
		case !ok:
			t.Errorf("%s is served but not in openapi.yaml", route)
		case public != served[route]:
			t.Errorf("%s: openapi.yaml says public=%v, the router serves it with public=%v", route, public, served[route])
		}
	}
	for _, route := range sortedKeys(documented) {
		if _, ok := served[route]; !ok {
			t.Errorf("%s is in openapi.yaml but not served", route)
		}
	}
}

// documentedPath writes a ServeMux pattern as an OpenAPI path: "/{$}" (exactly "/") is
// "/", and a trailing wildcard "{name...}" is "{name}".
func documentedPath(pattern string) string {
	p := strings.TrimSuffix(pattern, "{$}")
	if p == "" {
		p = "/"
	}
	return strings.ReplaceAll(p, "...}", "}")
}

func sortedKeys(m map[string]bool) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
