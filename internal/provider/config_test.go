package provider_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/runnerhub/webhooks/internal/provider"
)

func TestConfigJSON(t *testing.T) {
	cases := []struct {
		name, in string
		want     provider.Config
		decode   string   // a decode error containing this
		problems []string // Problems, in order
	}{
		{name: "exec", in: `{"type": "exec", "command": ["/p", "--flag"], "timeout": "90s"}`,
			want: provider.Config{Type: "exec", Exec: &provider.ExecConfig{Command: []string{"/p", "--flag"}, Timeout: 90 * time.Second}}},
		{name: "exec default timeout", in: `{"type": "exec", "command": ["/p"]}`,
			want: provider.Config{Type: "exec", Exec: &provider.ExecConfig{Command: []string{"/p"}, Timeout: 60 * time.Second}}},
		{name: "ec2", in: `{"type": "ec2", "launchTemplate": {"name": "runners", "version": "3"}, "subnets": ["subnet-0123abcd"], "instanceTypes": ["m7g.large"], "spot": true}`,
			want: provider.Config{Type: "ec2", EC2: &provider.EC2Config{LaunchTemplate: provider.LaunchTemplate{Name: "runners", Version: "3"},
				Subnets: []string{"subnet-0123abcd"}, InstanceTypes: []string{"m7g.large"}, Spot: true}}},
		{name: "field of the other type", in: `{"type": "exec", "command": ["/p"], "subnets": []}`, decode: `unknown field "subnets"`},
		{name: "bad timeout", in: `{"type": "exec", "command": ["/p"], "timeout": "soon"}`, decode: `timeout "soon" is not a duration`},
		{name: "unknown type", in: `{"type": "docker"}`, want: provider.Config{Type: "docker"},
			problems: []string{`provider.type "docker" must be "exec" or "ec2"`}},
		{name: "exec problems", in: `{"type": "exec", "command": [], "timeout": "0s"}`,
			want:     provider.Config{Type: "exec", Exec: &provider.ExecConfig{Command: []string{}}},
			problems: []string{"provider.command must name a program", "provider.timeout must be from 1s to 15m"}},
		{name: "ec2 problems", in: `{"type": "ec2", "launchTemplate": {"id": "lt-0123456789abcdef0", "name": "x1x", "version": "latest"}, "subnets": ["sn-1"], "instanceTypes": ["big"]}`,
			want: provider.Config{Type: "ec2", EC2: &provider.EC2Config{LaunchTemplate: provider.LaunchTemplate{ID: "lt-0123456789abcdef0", Name: "x1x", Version: "latest"},
				Subnets: []string{"sn-1"}, InstanceTypes: []string{"big"}}},
			problems: []string{"launchTemplate must have an id or a name, not both", `version "latest"`, `subnets[0] "sn-1"`, `instanceTypes[0] "big"`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got provider.Config
			err := json.Unmarshal([]byte(c.in), &got)
			if c.decode != "" {
				if err == nil || !strings.Contains(err.Error(), c.decode) {
					t.Fatalf("decode error = %v, want %q", err, c.decode)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("decoded %+v, want %+v", got, c.want)
			}
			problems := got.Problems()
			if len(problems) != len(c.problems) {
				t.Fatalf("problems %q, want %d like %q", problems, len(c.problems), c.problems)
			}
			for i, p := range c.problems {
				if !strings.Contains(problems[i], p) {
					t.Errorf("problem %d = %q, want %q in it", i, problems[i], p)
				}
			}
			// What is written reads back the same.
			b, err := json.Marshal(got)
			if err != nil {
				t.Fatal(err)
			}
			var again provider.Config
			if err := json.Unmarshal(b, &again); err != nil || !reflect.DeepEqual(again, got) {
				t.Fatalf("%s read back as %+v (%v)", b, again, err)
			}
		})
	}
}
