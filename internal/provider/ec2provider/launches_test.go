package ec2provider

import (
	"fmt"
	"testing"

	"github.com/runnerhub/webhooks/internal/provider"
)

// TestLaunchesTryEveryPair checks the order in which a Create meeting no capacity tries
// subnets and instance types: every pair once, instance types in their configured order,
// subnets rotated per runner so that runners spread over them.
func TestLaunchesTryEveryPair(t *testing.T) {
	p := &Provider{cfg: provider.EC2Config{Subnets: []string{"s1", "s2", "s3"}, InstanceTypes: []string{"big", "small"}}}
	firsts := map[string]bool{}
	for i := range 30 {
		got := p.launches(fmt.Sprintf("runner-%d", i))
		if len(got) != 6 {
			t.Fatalf("%d launches, want 6: %v", len(got), got)
		}
		seen := map[launch]bool{}
		for j, l := range got {
			if wantType := []string{"big", "small"}[j/3]; l.instanceType != wantType {
				t.Errorf("launch %d of runner-%d: type %s, want %s", j, i, l.instanceType, wantType)
			}
			seen[l] = true
		}
		if len(seen) != 6 {
			t.Errorf("runner-%d tries %v, some twice", i, got)
		}
		firsts[got[0].subnet] = true
	}
	if len(firsts) != 3 {
		t.Errorf("30 runners start in subnets %v, want all three", firsts)
	}
	none := (&Provider{}).launches("r")
	if len(none) != 1 || none[0] != (launch{}) {
		t.Errorf("without subnets and types: %v, want one launch left to the template", none)
	}
}
