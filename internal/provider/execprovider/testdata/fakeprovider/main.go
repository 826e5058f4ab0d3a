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

	"github.com/runnerhub/webhooks/internal/provider/execprovider/execfake"
)

func main() {
	state := flag.String("state", "", "directory holding one file per machine")
	misbehave := flag.String("misbehave", "", "exit3, badjson, twojson, noid, spam, echosecret, hang or detach")
	flag.String("zone", "", "ignored: tests pass it to check that the command's own arguments come first")
	flag.Parse()
	if *state == "" || flag.NArg() != 1 {
		execfake.Fail("usage: fakeprovider --state DIR [--misbehave MODE] create|delete|list")
	}
	stdin, err := io.ReadAll(os.Stdin)
	if err != nil {
		execfake.Fail("read stdin: %v", err)
	}
	// calls.log lets the tests see each call's arguments and stdin.
	execfake.Record(*state, map[string]any{"args": os.Args[1:], "action": flag.Arg(0), "stdin": json.RawMessage(stdin)})
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
			execfake.Fail("start child: %v", err)
		}
		os.WriteFile(filepath.Join(*state, "child.pid"), []byte(fmt.Sprint(child.Process.Pid)), 0o600)
		time.Sleep(300 * time.Second)
	case "detach":
		// A "runner" left running that keeps stdout open, as a careless create does.
		child := exec.Command("sleep", "30")
		child.Stdout = os.Stdout
		if err := child.Start(); err != nil {
			execfake.Fail("start child: %v", err)
		}
		os.WriteFile(filepath.Join(*state, "child.pid"), []byte(fmt.Sprint(child.Process.Pid)), 0o600)
	}
	switch flag.Arg(0) {
	case "create":
		var in struct{ Name string }
		if err := json.Unmarshal(stdin, &in); err != nil || in.Name == "" {
			execfake.Fail("create: stdin %q has no name", stdin)
		}
		id := providerID(in.Name)
		if err := os.WriteFile(filepath.Join(*state, id+".machine"), stdin, 0o600); err != nil {
			execfake.Fail("create: %v", err)
		}
		execfake.Answer(map[string]string{"providerId": id})
	case "delete":
		var in struct{ ProviderID string }
		if err := json.Unmarshal(stdin, &in); err != nil {
			execfake.Fail("delete: %v", err)
		}
		if err := os.Remove(filepath.Join(*state, filepath.Base(in.ProviderID)+".machine")); err != nil && !os.IsNotExist(err) {
			execfake.Fail("delete: %v", err)
		}
		execfake.Answer(struct{}{})
	case "list":
		var in struct{ Pool string }
		if err := json.Unmarshal(stdin, &in); err != nil {
			execfake.Fail("list: %v", err)
		}
		runners := []map[string]string{}
		for _, m := range execfake.Machines[struct{ Name, Pool string }](*state) {
			if m.Pool == in.Pool {
				runners = append(runners, map[string]string{"name": m.Name, "providerId": providerID(m.Name)})
			}
		}
		execfake.Answer(map[string]any{"runners": runners})
	default:
		execfake.Fail("unknown action %q", flag.Arg(0))
	}
}

// providerID is the id create gives the machine of the runner name: its file is
// <providerID>.machine, and list reads the id back from the name the file holds.
func providerID(name string) string { return "fake-" + name }
