package engine

// Batch planning: pure functions from a task's options and hosts to its
// batches, kept apart from the database so that every rounding rule has a
// table test.

// Phases of CONTRACT §4 (HERALD_PHASE) and §5.
const (
	PhaseCanary  = "canary"
	PhaseRollout = "rollout"
	PhaseSwitch  = "switch"
)

// DefaultBatchPercent is the batch size of rolling and canary rollouts that
// give neither batch_size nor batch_percent: four batches, the usual
// rolling-update default, so that a bad version never reaches every host
// in one step.
const DefaultBatchPercent = 25

// PlannedBatch is one batch of a plan, hosts in the order they start.
type PlannedBatch struct {
	Number int
	Phase  string
	Hosts  []string
}

// ceilPercent is ceil(n*p/100), at least 1 when n > 0.
func ceilPercent(n, p int) int {
	if n <= 0 {
		return 0
	}
	k := (n*p + 99) / 100
	return max(k, 1)
}

// CanaryCount is how many of total hosts form the canary: count as given,
// or percent of total rounded up; never less than one nor more than total.
func CanaryCount(total, count, percent int) int {
	if total <= 0 {
		return 0
	}
	k := count
	if percent > 0 {
		k = ceilPercent(total, percent)
	}
	if k < 1 {
		k = 1
	}
	return min(k, total)
}

// BatchSize is the number of hosts per batch when n hosts are rolled out:
// size as given, or percent of n rounded up; def (a percent) when neither
// is given, and all n at once when def is 0.
func BatchSize(n, size, percent, def int) int {
	if n <= 0 {
		return 0
	}
	switch {
	case size > 0:
		return min(size, n)
	case percent > 0:
		return ceilPercent(n, percent)
	case def > 0:
		return ceilPercent(n, def)
	}
	return n
}

// Split cuts hosts into consecutive groups of size (the last may be
// smaller).
func Split(hosts []string, size int) [][]string {
	if size <= 0 {
		size = len(hosts)
	}
	var out [][]string
	for len(hosts) > 0 {
		k := min(size, len(hosts))
		out = append(out, hosts[:k:k])
		hosts = hosts[k:]
	}
	return out
}

// PlanInput is what a plan depends on.
type PlanInput struct {
	Strategy     string
	Hosts        []string // the task's hosts, in order
	CanaryCount  int      // canary only
	BatchSize    int
	BatchPercent int
}

// MakePlan lays out the batches of a task:
//   - canary: batch 1 is the first CanaryCount hosts (phase canary), the
//     rest follow in rollout batches;
//   - rolling: rollout batches over every host;
//   - blue_green: rollout batches over the idle group (one batch unless a
//     size is given: the group serves no traffic yet), then an empty switch
//     batch that receives the hosts when the task is promoted.
func MakePlan(in PlanInput) []PlannedBatch {
	var out []PlannedBatch
	add := func(phase string, hosts []string) {
		out = append(out, PlannedBatch{Number: len(out) + 1, Phase: phase, Hosts: hosts})
	}
	rest := in.Hosts
	def := DefaultBatchPercent
	switch in.Strategy {
	case StrategyCanary:
		k := min(max(in.CanaryCount, 1), len(rest))
		add(PhaseCanary, rest[:k:k])
		rest = rest[k:]
	case StrategyBlueGreen:
		def = 0
	}
	for _, b := range Split(rest, BatchSize(len(rest), in.BatchSize, in.BatchPercent, def)) {
		add(PhaseRollout, b)
	}
	if in.Strategy == StrategyBlueGreen {
		add(PhaseSwitch, nil)
	}
	return out
}

// IdleGroup is the blue-green group a release deploys to: the one not
// live; blue when nothing is live yet.
func IdleGroup(live string) string {
	if live == GroupBlue {
		return GroupGreen
	}
	return GroupBlue
}

// Blue-green groups, the values of the host label "group".
const (
	GroupLabel = "group"
	GroupBlue  = "blue"
	GroupGreen = "green"
)
