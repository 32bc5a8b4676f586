package engine

import (
	"fmt"
	"reflect"
	"slices"
	"testing"

	"github.com/herald-release/herald/internal/inventory"
)

func TestCanaryCount(t *testing.T) {
	t.Parallel()
	tests := []struct {
		total, count, percent, want int
	}{
		{10, 1, 0, 1},
		{10, 3, 0, 3},
		{10, 0, 10, 1},
		{10, 0, 15, 2}, // 1.5 rounds up
		{10, 0, 100, 10},
		{3, 0, 1, 1}, // never less than one host
		{3, 5, 0, 3}, // never more than all
		{10, 0, 0, 1},
		{0, 1, 0, 0},
	}
	for _, tt := range tests {
		if got := CanaryCount(tt.total, tt.count, tt.percent); got != tt.want {
			t.Errorf("CanaryCount(%d, %d, %d%%) = %d, want %d", tt.total, tt.count, tt.percent, got, tt.want)
		}
	}
}

func TestBatchSize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		n, size, percent, def, want int
	}{
		{10, 2, 0, 25, 2},
		{10, 20, 0, 25, 10}, // capped at n
		{10, 0, 25, 0, 3},   // 2.5 rounds up
		{10, 0, 1, 0, 1},    // at least one
		{10, 0, 0, 25, 3},   // the default percent
		{8, 0, 0, 25, 2},
		{10, 0, 0, 0, 10}, // no default: all at once
		{0, 2, 0, 25, 0},
	}
	for _, tt := range tests {
		if got := BatchSize(tt.n, tt.size, tt.percent, tt.def); got != tt.want {
			t.Errorf("BatchSize(%d, size %d, %d%%, def %d) = %d, want %d", tt.n, tt.size, tt.percent, tt.def, got, tt.want)
		}
	}
}

func names(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("h%d", i+1)
	}
	return out
}

func TestSplit(t *testing.T) {
	t.Parallel()
	got := Split(names(5), 2)
	want := [][]string{{"h1", "h2"}, {"h3", "h4"}, {"h5"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Split = %v, want %v", got, want)
	}
	if got := Split(nil, 3); got != nil {
		t.Fatalf("Split(nil) = %v", got)
	}
	// Appending to a batch must not overwrite the next one.
	parts := Split(names(4), 2)
	_ = append(parts[0], "x")
	if parts[1][0] != "h3" {
		t.Fatal("batches share their backing array")
	}
}

func TestMakePlan(t *testing.T) {
	t.Parallel()
	type b struct {
		phase string
		hosts []string
	}
	tests := []struct {
		name string
		in   PlanInput
		want []b
	}{
		{"rolling by size", PlanInput{Strategy: StrategyRolling, Hosts: names(5), BatchSize: 2},
			[]b{{"rollout", []string{"h1", "h2"}}, {"rollout", []string{"h3", "h4"}}, {"rollout", []string{"h5"}}}},
		{"rolling by percent", PlanInput{Strategy: StrategyRolling, Hosts: names(4), BatchPercent: 50},
			[]b{{"rollout", []string{"h1", "h2"}}, {"rollout", []string{"h3", "h4"}}}},
		{"rolling default is quarters", PlanInput{Strategy: StrategyRolling, Hosts: names(4)},
			[]b{{"rollout", []string{"h1"}}, {"rollout", []string{"h2"}}, {"rollout", []string{"h3"}}, {"rollout", []string{"h4"}}}},
		{"canary then batches of the rest", PlanInput{Strategy: StrategyCanary, Hosts: names(5), CanaryCount: 1, BatchSize: 2},
			[]b{{"canary", []string{"h1"}}, {"rollout", []string{"h2", "h3"}}, {"rollout", []string{"h4", "h5"}}}},
		{"canary percent of the rest", PlanInput{Strategy: StrategyCanary, Hosts: names(5), CanaryCount: 1, BatchPercent: 50},
			[]b{{"canary", []string{"h1"}}, {"rollout", []string{"h2", "h3"}}, {"rollout", []string{"h4", "h5"}}}},
		{"canary of every host", PlanInput{Strategy: StrategyCanary, Hosts: names(2), CanaryCount: 2},
			[]b{{"canary", []string{"h1", "h2"}}}},
		{"blue-green: one batch, then the switch", PlanInput{Strategy: StrategyBlueGreen, Hosts: names(3)},
			[]b{{"rollout", []string{"h1", "h2", "h3"}}, {"switch", nil}}},
		{"blue-green in batches", PlanInput{Strategy: StrategyBlueGreen, Hosts: names(3), BatchSize: 2},
			[]b{{"rollout", []string{"h1", "h2"}}, {"rollout", []string{"h3"}}, {"switch", nil}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := MakePlan(tt.in)
			if len(got) != len(tt.want) {
				t.Fatalf("got %d batches %+v, want %d", len(got), got, len(tt.want))
			}
			for i, pb := range got {
				if pb.Number != i+1 || pb.Phase != tt.want[i].phase || !slices.Equal(pb.Hosts, tt.want[i].hosts) {
					t.Errorf("batch %d = %+v, want %d %s %v", i, pb, i+1, tt.want[i].phase, tt.want[i].hosts)
				}
			}
		})
	}
}

func TestIdleGroup(t *testing.T) {
	t.Parallel()
	for live, want := range map[string]string{"": "blue", "blue": "green", "green": "blue"} {
		if got := IdleGroup(live); got != want {
			t.Errorf("IdleGroup(%q) = %q, want %q", live, got, want)
		}
	}
}

func TestSelectHosts(t *testing.T) {
	t.Parallel()
	h := func(name, group string) *inventory.Host {
		l := map[string]string{}
		if group != "" {
			l[GroupLabel] = group
		}
		return &inventory.Host{Name: name, Labels: l}
	}
	all := []*inventory.Host{h("a", "blue"), h("b", "green"), h("c", "blue"), h("d", "green")}
	pick := func(hs []*inventory.Host) []string {
		var out []string
		for _, x := range hs {
			out = append(out, x.Name)
		}
		return out
	}
	tests := []struct {
		name      string
		all       []*inventory.Host
		requested []string
		strategy  string
		idle      string
		want      []string
		fields    []string
	}{
		{"every host by name", all, nil, StrategyRolling, "", []string{"a", "b", "c", "d"}, nil},
		{"requested order kept", all, []string{"c", "a"}, StrategyCanary, "", []string{"c", "a"}, nil},
		{"unknown host", all, []string{"a", "zz"}, StrategyRolling, "", nil, []string{"hosts[1]"}},
		{"no hosts at all", nil, nil, StrategyRolling, "", nil, []string{"environment"}},
		{"blue-green keeps the idle group", all, nil, StrategyBlueGreen, "green", []string{"b", "d"}, nil},
		{"blue-green refuses a live host", all, []string{"b", "a"}, StrategyBlueGreen, "green", nil, []string{"hosts[1]"}},
		{"blue-green needs labels", []*inventory.Host{h("a", "blue"), h("x", "")}, nil, StrategyBlueGreen, "blue", nil, []string{"strategy"}},
		{"blue-green with an empty idle group", []*inventory.Host{h("a", "blue")}, nil, StrategyBlueGreen, "green", nil, []string{"strategy"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, errs := selectHosts(tt.all, tt.requested, tt.strategy, tt.idle)
			var fields []string
			for _, e := range errs {
				fields = append(fields, e.Field)
			}
			if !slices.Equal(fields, tt.fields) {
				t.Fatalf("errors %v, want fields %v", errs, tt.fields)
			}
			if tt.fields == nil && !slices.Equal(pick(got), tt.want) {
				t.Fatalf("picked %v, want %v", pick(got), tt.want)
			}
		})
	}
}

func TestNormalize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		in     CreateInput
		fields []string
	}{
		{"defaults", CreateInput{ProjectID: "p", Environment: "e", VersionID: "v"}, nil},
		{"missing everything", CreateInput{}, []string{"project_id", "environment", "version_id"}},
		{"unknown enums", CreateInput{ProjectID: "p", Environment: "e", VersionID: "v", Type: "nuke", Strategy: "yolo"}, []string{"type", "strategy"}},
		{"rollback needs no version", CreateInput{ProjectID: "p", Environment: "e", Type: "rollback"}, nil},
		{"canary options on rolling", CreateInput{ProjectID: "p", Environment: "e", VersionID: "v", Strategy: "rolling", Canary: &Canary{Count: 1}}, []string{"canary"}},
		{"canary count and percent", CreateInput{ProjectID: "p", Environment: "e", VersionID: "v", Strategy: "canary", Canary: &Canary{Count: 1, Percent: 5}}, []string{"canary"}},
		{"canary percent out of range", CreateInput{ProjectID: "p", Environment: "e", VersionID: "v", Strategy: "canary", Canary: &Canary{Percent: 101}}, []string{"canary.percent"}},
		{"both batch options", CreateInput{ProjectID: "p", Environment: "e", VersionID: "v", BatchSize: 2, BatchPercent: 10}, []string{"batch_size"}},
		{"negative numbers", CreateInput{ProjectID: "p", Environment: "e", VersionID: "v", BatchSize: -1, MaxParallel: -1, MaxFailures: -1}, []string{"batch_size", "max_parallel", "max_failures"}},
		{"auto promote on rolling", CreateInput{ProjectID: "p", Environment: "e", VersionID: "v", AutoPromoteAfter: 1}, []string{"auto_promote_after"}},
		{"auto rollback of a stop", CreateInput{ProjectID: "p", Environment: "e", Type: "stop", AutoRollback: true}, []string{"auto_rollback"}},
		{"duplicate hosts", CreateInput{ProjectID: "p", Environment: "e", VersionID: "v", Hosts: []string{"a", "a", ""}}, []string{"hosts[1]", "hosts[2]"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			errs := tt.in.normalize()
			var fields []string
			for _, e := range errs {
				fields = append(fields, e.Field)
			}
			if !slices.Equal(fields, tt.fields) {
				t.Fatalf("fields %v, want %v (%v)", fields, tt.fields, errs)
			}
		})
	}
}
