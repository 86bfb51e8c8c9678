package nacos

import (
	"slices"
	"testing"

	"github.com/nacos-group/nacos-sdk-go/v2/model"

	"github.com/herd-go/herd/cluster/backend"
)

// Only healthy, enabled instances of the configured cluster with weight
// above zero are members; the rest are neither members nor malformed.
func TestDecodeKeepsOnlyServingInstances(t *testing.T) {
	c := &Coordinator{cfg: DefaultConfig(), opts: backend.NewOptions()}
	inst := func(id string, mut func(*model.Instance)) model.Instance {
		in := model.Instance{Ip: "10.0.0.1", Port: 11800, Healthy: true, Enable: true, Weight: 1, ClusterName: "DEFAULT", Metadata: map[string]string{IDKey: id}}
		if mut != nil {
			mut(&in)
		}
		return in
	}
	got := c.decode([]model.Instance{
		inst("serving", nil),
		inst("no-cluster-name", func(in *model.Instance) { in.ClusterName = ""; in.Ip = "10.0.0.2" }),
		inst("unhealthy", func(in *model.Instance) { in.Healthy = false; in.Ip = "10.0.0.3" }),
		inst("disabled", func(in *model.Instance) { in.Enable = false; in.Ip = "10.0.0.4" }),
		inst("weightless", func(in *model.Instance) { in.Weight = 0; in.Ip = "10.0.0.5" }),
		inst("other-cluster", func(in *model.Instance) { in.ClusterName = "OTHER"; in.Ip = "10.0.0.6" }),
	}, true)
	var ids []string
	for _, n := range got {
		ids = append(ids, n.ID)
	}
	if !slices.Equal(ids, []string{"serving", "no-cluster-name"}) {
		t.Fatalf("members %v, want [serving no-cluster-name]", ids)
	}
	if m := c.malformed.Count(); m != 0 {
		t.Fatalf("%d instances counted as malformed; not serving is not malformed", m)
	}
}

// The node's metadata is the instance's, without herd's own ID key; none
// left is nil, as a node decoded from any other backend.
func TestDecodeKeepsMetadataWithoutTheIDKey(t *testing.T) {
	c := &Coordinator{cfg: DefaultConfig(), opts: backend.NewOptions()}
	got := c.decode([]model.Instance{
		{Ip: "10.0.0.1", Port: 11800, Healthy: true, Enable: true, Weight: 1, Metadata: map[string]string{IDKey: "a", "zone": "z1"}},
		{Ip: "10.0.0.2", Port: 11800, Healthy: true, Enable: true, Weight: 1, Metadata: map[string]string{IDKey: "b"}},
	}, true)
	if len(got) != 2 || len(got[0].Meta) != 1 || got[0].Meta["zone"] != "z1" || got[1].Meta != nil {
		t.Fatalf("decoded %+v, want a with {zone: z1} and b with nil metadata", got)
	}
}
