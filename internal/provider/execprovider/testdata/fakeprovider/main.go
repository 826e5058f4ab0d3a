// Command fakeprovider is an exec provider for tests: it keeps each "machine" as a file
// in the --state directory, holding the create request exactly as it was read from
// stdin. Flags make it misbehave in the ways the tests need.
//
//	fakeprovider --state DIR [--misbehave MODE] [--zone Z] create|delete|list
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

func main() {
	state := flag.String("state", "", "directory holding one file per machine")
	misbehave := flag.String("misbehave", "", "exit3, badjson, twojson, noid, spam, echosecret, hang or detach")
	flag.String("zone", "", "ignored: tests pass it to check that the command's own arguments come first")
	flag.Parse()
	if *state == "" || flag.NArg() != 1 {
		fail("usage: fakeprovider --state DIR [--misbehave MODE] create|delete|list")
	}
	stdin, err := io.ReadAll(os.Stdin)
	if err != nil {
		fail("read stdin: %v", err)
	}
	record(*state, flag.Arg(0), stdin)
	switch *misbehave {
	case "exit3":
		fmt.Fprintln(os.Stderr, "progress line")
		fmt.Fprintln(os.Stderr, "cloud says no")
		os.Exit(3)
	case "badjson":
		fmt.Print("providerId: x")
		return
	case "twojson":
		fmt.Print(`{"providerId": "a"} {"providerId": "b"}`)
		return
	case "noid":
		fmt.Print(`{}`)
		return
	case "spam":
		os.Stdout.Write([]byte(`{"providerId": "` + strings.Repeat("x", 2<<20) + `"}`))
		return
	case "echosecret":
		var in struct{ JITConfig string }
		json.Unmarshal(stdin, &in)
		fmt.Fprintf(os.Stderr, "starting runner with --jitconfig %s\nfailed\n", in.JITConfig)
		os.Exit(1)
	case "hang":
		// A child in the same process group, which a timeout must end too.
		child := exec.Command("sleep", "300")
		if err := child.Start(); err != nil {
			fail("start child: %v", err)
		}
		os.WriteFile(filepath.Join(*state, "child.pid"), []byte(fmt.Sprint(child.Process.Pid)), 0o600)
		time.Sleep(300 * time.Second)
	case "detach":
		// A "runner" left running that keeps stdout open, as a careless create does.
		child := exec.Command("sleep", "30")
		child.Stdout = os.Stdout
		if err := child.Start(); err != nil {
			fail("start child: %v", err)
		}
		os.WriteFile(filepath.Join(*state, "child.pid"), []byte(fmt.Sprint(child.Process.Pid)), 0o600)
	}
	switch flag.Arg(0) {
	case "create":
		var in struct{ Name string }
		if err := json.Unmarshal(stdin, &in); err != nil || in.Name == "" {
			fail("create: stdin %q has no name", stdin)
		}
		id := "fake-" + in.Name
		if err := os.WriteFile(filepath.Join(*state, id+".machine"), stdin, 0o600); err != nil {
			fail("create: %v", err)
		}
		answer(map[string]string{"providerId": id})
	case "delete":
		var in struct{ ProviderID string }
		if err := json.Unmarshal(stdin, &in); err != nil {
			fail("delete: %v", err)
		}
		if err := os.Remove(filepath.Join(*state, filepath.Base(in.ProviderID)+".machine")); err != nil && !os.IsNotExist(err) {
			fail("delete: %v", err)
		}
		answer(struct{}{})
	case "list":
		var in struct{ Pool string }
		if err := json.Unmarshal(stdin, &in); err != nil {
			fail("list: %v", err)
		}
		files, _ := filepath.Glob(filepath.Join(*state, "*.machine"))
		runners := []map[string]string{}
		for _, f := range files {
			b, _ := os.ReadFile(f)
			var m struct{ Name, Pool string }
			json.Unmarshal(b, &m)
			if m.Pool == in.Pool {
				runners = append(runners, map[string]string{"name": m.Name, "providerId": strings.TrimSuffix(filepath.Base(f), ".machine")})
			}
		}
		answer(map[string]any{"runners": runners})
	default:
		fail("unknown action %q", flag.Arg(0))
	}
}

// record appends the call to calls.log, so that tests can see the arguments and stdin.
func record(state, action string, stdin []byte) {
	f, err := os.OpenFile(filepath.Join(state, "calls.log"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		fail("record: %v", err)
	}
	defer f.Close()
	line, _ := json.Marshal(map[string]any{"args": os.Args[1:], "action": action, "stdin": json.RawMessage(stdin)})
	f.Write(append(line, '\n'))
}

func answer(v any) {
	if err := json.NewEncoder(os.Stdout).Encode(v); err != nil {
		fail("answer: %v", err)
	}
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(1)
}
