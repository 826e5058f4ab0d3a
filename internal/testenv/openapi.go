package testenv

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Operation is one operation of the repository's openapi.yaml.
type Operation struct {
	Method string // GET, POST, ...
	Path   string // as in the document: /api/jobs/{id}
	// Public: the operation says security: [] (no API token).
	Public bool
	// ServedBy is its x-served-by: "" for the ApiFunction and the local stack,
	// "webhook" for the WebhookFunction and the local stack, "local" for the local stack
	// only.
	ServedBy string
}

// openAPIScript validates the document with openapi-spec-validator and prints its
// operations as JSON. Python reads the YAML because the module has no YAML parser.
const openAPIScript = `import json, sys, yaml
from openapi_spec_validator import validate
doc = yaml.safe_load(open(sys.argv[1]))
validate(doc)
ops = []
for path, item in doc["paths"].items():
    for method, op in item.items():
        if method in ("get", "put", "post", "delete", "patch", "head", "options"):
            ops.append({"Method": method.upper(), "Path": path,
                        "Public": op.get("security", doc.get("security")) == [],
                        "ServedBy": op.get("x-served-by", "")})
json.dump(ops, sys.stdout)
`

// OpenAPI validates openapi.yaml at the repository root as an OpenAPI 3 document and
// returns its operations. It needs python3 with PyYAML and openapi-spec-validator (which
// come with the image's Python, as cfn-lint does) and skips the test without them,
// unless RUNNERHUB_REQUIRE_TOOLS=1.
func OpenAPI(t testing.TB) []Operation {
	t.Helper()
	python := RequireTool(t, "python3", "install Python 3")
	if err := exec.Command(python, "-c", "import yaml, openapi_spec_validator").Run(); err != nil {
		msg := python + " lacks PyYAML or openapi-spec-validator (pip install pyyaml openapi-spec-validator); RUNNERHUB_REQUIRE_TOOLS=1 makes this a failure"
		if ToolsRequired() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	cmd := exec.Command(python, "-c", openAPIScript, filepath.Join(RepoRoot(t), "openapi.yaml"))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("openapi.yaml is not a valid OpenAPI 3 document (%v):\n%s", err, stderr.String())
	}
	var ops []Operation
	if err := json.Unmarshal(out, &ops); err != nil {
		t.Fatalf("reading the operations of openapi.yaml: %v", err)
	}
	return ops
}
