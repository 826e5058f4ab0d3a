package provider

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"time"
)

// The provider types a pool can name.
const (
	TypeExec = "exec"
	TypeEC2  = "ec2"
)

// DefaultExecTimeout bounds one call of an exec provider's command when the pool sets no
// "timeout".
const DefaultExecTimeout = 60 * time.Second

// Config is a pool's "provider": {"type": "exec", ...} or {"type": "ec2", ...}. Exactly
// the field of its type is set.
type Config struct {
	Type string
	Exec *ExecConfig
	EC2  *EC2Config
}

// ExecConfig runs Command (no shell) with the action as one more argument.
type ExecConfig struct {
	Command []string
	Timeout time.Duration // per call; DefaultExecTimeout when unset
}

// EC2Config starts instances from a launch template.
type EC2Config struct {
	LaunchTemplate LaunchTemplate `json:"launchTemplate"`
	// Subnets are tried in turn, starting at one picked per runner, when a launch meets a
	// capacity error; none leaves the subnet to the launch template.
	Subnets []string `json:"subnets,omitempty"`
	// InstanceTypes are tried in turn the same way; none leaves the type to the template.
	InstanceTypes []string `json:"instanceTypes,omitempty"`
	Spot          bool     `json:"spot,omitempty"`   // one-time spot instances, terminated on interruption
	Region        string   `json:"region,omitempty"` // the function's region when empty
}

// LaunchTemplate names a launch template by ID or by name (one of them) and a version:
// a number, "$Latest" or "$Default" (the default).
type LaunchTemplate struct {
	ID      string `json:"id,omitempty"`
	Name    string `json:"name,omitempty"`
	Version string `json:"version,omitempty"`
}

// execJSON is ExecConfig on the wire, where the timeout is a Go duration string.
type execJSON struct {
	Type    string   `json:"type"`
	Command []string `json:"command"`
	Timeout string   `json:"timeout,omitempty"`
}

type ec2JSON struct {
	Type string `json:"type"`
	EC2Config
}

// MarshalJSON writes the flat {"type", ...fields of the type} object.
func (c Config) MarshalJSON() ([]byte, error) {
	switch {
	case c.Exec != nil:
		return json.Marshal(execJSON{Type: TypeExec, Command: c.Exec.Command, Timeout: c.Exec.Timeout.String()})
	case c.EC2 != nil:
		return json.Marshal(ec2JSON{Type: TypeEC2, EC2Config: *c.EC2})
	}
	return json.Marshal(struct {
		Type string `json:"type"`
	}{c.Type})
}

// UnmarshalJSON reads the object by its "type", refusing fields that type does not have.
// Values are checked by Problems, so that every problem can be named at once.
func (c *Config) UnmarshalJSON(data []byte) error {
	var probe struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return err
	}
	*c = Config{Type: probe.Type}
	switch probe.Type {
	case TypeExec:
		var w execJSON
		if err := strictDecode(data, &w); err != nil {
			return err
		}
		c.Exec = &ExecConfig{Command: w.Command, Timeout: DefaultExecTimeout}
		if w.Timeout != "" {
			d, err := time.ParseDuration(w.Timeout)
			if err != nil {
				return fmt.Errorf("provider timeout %q is not a duration such as 60s", w.Timeout)
			}
			c.Exec.Timeout = d
		}
	case TypeEC2:
		var w ec2JSON
		if err := strictDecode(data, &w); err != nil {
			return err
		}
		c.EC2 = &w.EC2Config
	}
	return nil
}

func strictDecode(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

var (
	launchTemplateID      = regexp.MustCompile(`^lt-[0-9a-f]{8,17}$`)
	launchTemplateName    = regexp.MustCompile(`^[A-Za-z0-9().\-/_]{3,128}$`)
	launchTemplateVersion = regexp.MustCompile(`^(\$Latest|\$Default|[1-9][0-9]{0,17})$`)
	subnetID              = regexp.MustCompile(`^subnet-[0-9a-f]{8,17}$`)
	instanceType          = regexp.MustCompile(`^[a-z0-9-]+\.[a-z0-9-]+$`)
)

// Problems says everything that is wrong with the configuration, each problem naming
// its field; none when it is valid.
func (c Config) Problems() []string {
	var out []string
	bad := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	switch {
	case c.Exec != nil:
		if len(c.Exec.Command) == 0 || c.Exec.Command[0] == "" {
			bad("provider.command must name a program, as a list such as [\"/usr/local/bin/provider\", \"--flag\"]")
		}
		if c.Exec.Timeout < time.Second || c.Exec.Timeout > 15*time.Minute {
			bad("provider.timeout must be from 1s to 15m")
		}
	case c.EC2 != nil:
		lt := c.EC2.LaunchTemplate
		switch {
		case (lt.ID == "") == (lt.Name == ""):
			bad("provider.launchTemplate must have an id or a name, not both")
		case lt.ID != "" && !launchTemplateID.MatchString(lt.ID):
			bad("provider.launchTemplate.id %q is not a launch template ID (lt-...)", lt.ID)
		case lt.Name != "" && !launchTemplateName.MatchString(lt.Name):
			bad("provider.launchTemplate.name %q is not a launch template name", lt.Name)
		}
		if lt.Version != "" && !launchTemplateVersion.MatchString(lt.Version) {
			bad("provider.launchTemplate.version %q must be a number, $Latest or $Default", lt.Version)
		}
		for i, s := range c.EC2.Subnets {
			if !subnetID.MatchString(s) {
				bad("provider.subnets[%d] %q is not a subnet ID (subnet-...)", i, s)
			}
		}
		for i, t := range c.EC2.InstanceTypes {
			if !instanceType.MatchString(t) {
				bad("provider.instanceTypes[%d] %q is not an instance type such as m7g.large", i, t)
			}
		}
	default:
		bad("provider.type %q must be %q or %q", c.Type, TypeExec, TypeEC2)
	}
	return out
}
