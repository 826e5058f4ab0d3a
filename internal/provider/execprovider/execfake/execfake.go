// Package execfake holds what the tests' fake exec-provider programs share: the JSON
// answer on stdout, the failing exit, the calls.log they keep for the tests to read, and
// the <providerId>.machine files of their state directory.
package execfake

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// NeverConnectedFile names, in the fake runner program's state directory, the runner of
// its --never-connect attempt and its pool, a line each (fakegithub.RunnerProgram reads it).
const NeverConnectedFile = "never-connected"

// Answer writes v to stdout, the call's JSON answer.
func Answer(v any) {
	if err := json.NewEncoder(os.Stdout).Encode(v); err != nil {
		Fail("answer: %v", err)
	}
}

// Fail fails the call as a provider command does: the message on stderr, exit status 1.
func Fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(1)
}

// Record appends call to the state directory's calls.log as one JSON line.
func Record(state string, call any) {
	f, err := os.OpenFile(filepath.Join(state, "calls.log"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		Fail("record: %v", err)
	}
	defer f.Close()
	line, _ := json.Marshal(call)
	_, _ = f.Write(append(line, '\n'))
}

// Machines reads the state directory's <providerId>.machine files as M. A file deleted
// meanwhile, or not M's JSON, is no machine.
func Machines[M any](state string) []M {
	files, _ := filepath.Glob(filepath.Join(state, "*.machine"))
	var out []M
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // deleted meanwhile
		}
		var m M
		if json.Unmarshal(b, &m) == nil {
			out = append(out, m)
		}
	}
	return out
}
