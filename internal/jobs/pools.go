package jobs

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
)

var poolName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// Validate checks one pool definition and says what is wrong with it.
func (p Pool) Validate() error {
	switch {
	case !poolName.MatchString(p.Name):
		return fmt.Errorf("pool %q: name must be 1-63 letters, digits, '.', '_' or '-'", p.Name)
	case len(p.Labels) == 0:
		return fmt.Errorf("pool %q: labels must not be empty", p.Name)
	case p.MinIdle < 0:
		return fmt.Errorf("pool %q: minIdle must not be negative", p.Name)
	case p.MaxRunners < 1:
		return fmt.Errorf("pool %q: maxRunners must be at least 1", p.Name)
	case p.MinIdle > p.MaxRunners:
		return fmt.Errorf("pool %q: minIdle (%d) exceeds maxRunners (%d)", p.Name, p.MinIdle, p.MaxRunners)
	}
	for i, l := range p.Labels {
		if l == "" || len(l) > 100 {
			return fmt.Errorf("pool %q: label %d must be 1-100 characters", p.Name, i)
		}
	}
	return nil
}

// ParsePools reads the RUNNERHUB_POOLS format: a JSON list of
// {"name", "labels", "minIdle", "maxRunners"}. Unknown fields, duplicate names and
// invalid entries are errors that name the entry.
func ParsePools(data []byte) ([]Pool, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var pools []Pool
	if err := dec.Decode(&pools); err != nil {
		return nil, fmt.Errorf("pools must be a JSON list of {name, labels, minIdle, maxRunners}: %w", err)
	}
	seen := map[string]bool{}
	for i, p := range pools {
		if err := p.Validate(); err != nil {
			return nil, fmt.Errorf("entry %d: %w", i, err)
		}
		if seen[p.Name] {
			return nil, fmt.Errorf("entry %d: pool %q is defined twice", i, p.Name)
		}
		seen[p.Name] = true
	}
	sort.Slice(pools, func(i, j int) bool { return pools[i].Name < pools[j].Name })
	return pools, nil
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
