// Package testenv starts the real parts tests run against — moto_server for the AWS
// services, aws-lambda-rie for built Lambda bootstraps — each on a free loopback port,
// and stops them when the test ends.
//
// A test that needs a tool which is not installed is skipped with a message naming the
// tool, unless RUNNERHUB_REQUIRE_TOOLS=1 (as .ci/run sets), in which case it fails.
package testenv

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// ToolsRequired reports whether missing tools fail tests instead of skipping them.
func ToolsRequired() bool { return os.Getenv("RUNNERHUB_REQUIRE_TOOLS") == "1" }

// RequireTool returns the path of an executable, looking in PATH and in $(go env GOPATH)/bin,
// or skips (fails with RUNNERHUB_REQUIRE_TOOLS=1) the test when it is not installed.
func RequireTool(t testing.TB, name, installHint string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	gopath := os.Getenv("GOPATH")
	if gopath == "" {
		if home, err := os.UserHomeDir(); err == nil {
			gopath = filepath.Join(home, "go")
		}
	}
	if p := filepath.Join(gopath, "bin", name); gopath != "" {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	msg := name + " is not installed (" + installHint + "); RUNNERHUB_REQUIRE_TOOLS=1 makes this a failure"
	if ToolsRequired() {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// RepoRoot returns the repository root (the directory holding go.mod), so tests in any
// package can find template.yaml, testdata/ and events/.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the working directory")
		}
		dir = parent
	}
}
