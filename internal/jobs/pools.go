package jobs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/runnerhub/webhooks/internal/jsonerr"
)

var poolName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// Validate checks one pool definition and names every problem with it.
func (p Pool) Validate() error {
	var problems []string
	fail := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if !poolName.MatchString(p.Name) {
		fail("name must be 1-63 letters, digits, '.', '_' or '-'")
	}
	if len(p.Labels) == 0 {
		fail("labels must not be empty")
	}
	for i, l := range p.Labels {
		if l == "" || len(l) > maxLabelLength {
			fail("label %d must be 1-%d characters", i, maxLabelLength)
		}
	}
	if p.MinIdle < 0 {
		fail("minIdle must not be negative")
	}
	if p.MaxRunners < 1 {
		fail("maxRunners must be at least 1")
	} else if p.MinIdle > p.MaxRunners {
		fail("minIdle (%d) exceeds maxRunners (%d)", p.MinIdle, p.MaxRunners)
	}
	problems = append(problems, p.provisioningProblems()...)
	if len(problems) > 0 {
		return fmt.Errorf("pool %q: %s", p.Name, strings.Join(problems, "; "))
	}
	return nil
}

// ParsePools reads the RUNNERHUB_POOLS format: a JSON list of pools (PoolDocument).
// Unknown fields, duplicate names and invalid entries are errors that name every problem
// of every entry.
func ParsePools(data []byte) ([]Pool, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, nil
	}
	var pools []Pool
	if err := strictDecode(data, &pools); err != nil {
		return nil, fmt.Errorf("expected a JSON list of {name, labels, minIdle, maxRunners}: %s", jsonerr.Describe(err))
	}
	var problems []string
	seen := map[string]bool{}
	for i, p := range pools {
		if err := p.Validate(); err != nil {
			problems = append(problems, fmt.Sprintf("entry %d: %v", i, err))
		}
		if seen[p.Name] {
			problems = append(problems, fmt.Sprintf("entry %d: pool %q is defined twice", i, p.Name))
		}
		seen[p.Name] = true
	}
	if len(problems) > 0 {
		return nil, errors.New(strings.Join(problems, "; "))
	}
	sort.Slice(pools, func(i, j int) bool { return pools[i].Name < pools[j].Name })
	return pools, nil
}

func strictDecode(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// mergePools overlays the pools kept in the store (created through the API) on the
// configured ones; a stored pool replaces a configured pool of the same name. The result
// is sorted by name, which is the order in which fitting pools are tried.
func mergePools(configured, stored []Pool) []Pool {
	byName := map[string]Pool{}
	for _, p := range configured {
		byName[p.Name] = p
	}
	for _, p := range stored {
		byName[p.Name] = p
	}
	out := make([]Pool, 0, len(byName))
	for _, p := range byName {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
