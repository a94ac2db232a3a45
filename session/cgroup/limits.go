package cgroup

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

const (
	// cpuPeriod is the CFS bandwidth period in µs: the kernel's default,
	// short enough that a limited jail does not stall visibly between
	// periods, long enough that the quota is not rounded away.
	cpuPeriod = 100000
	// minQuota is the smallest CFS quota the kernel accepts (1 ms); below
	// it the write fails with EINVAL.
	minQuota = 1000
	// maxCPUs bounds CPUs so quota arithmetic stays exact.
	maxCPUs = 1 << 20
	// minMemory is the smallest memory limit accepted: the kernel rounds
	// limits down to pages, and below a megabyte not even a shell starts,
	// so a smaller value is a unit mistake, not a wish.
	minMemory = 1 << 20
	// pidMaxLimit is the kernel's PID_MAX_LIMIT on 64-bit; pids.max refuses
	// larger numbers, and a limit that high could never bind anyway.
	pidMaxLimit = 1 << 22
)

// fileWrite is one value to write in a group's directory.
type fileWrite struct {
	controller string // the hierarchy whose directory holds the file
	file       string
	value      string
	// optional files are skipped when the kernel lacks them: the swap
	// files exist only with swap accounting (CONFIG_MEMCG_SWAP and, before
	// 6.1, swapaccount=1).
	optional bool
}

// needed returns the controllers the limits use.
func needed(l Limits) []string {
	var c []string
	if l.Memory != 0 {
		c = append(c, "memory")
	}
	if l.CPUs != 0 {
		c = append(c, "cpu")
	}
	if l.Pids != 0 {
		c = append(c, "pids")
	}
	return c
}

// limitWrites returns the writes that set l, in order, given the
// controllers served by the unified hierarchy (v2); the others are v1.
func limitWrites(l Limits, v2 []string) ([]fileWrite, error) {
	var w []fileWrite
	if l.Memory != 0 {
		if l.Memory < minMemory {
			return nil, fmt.Errorf("%w: memory %d bytes is below %d", ErrInvalidLimit, l.Memory, minMemory)
		}
		v := strconv.FormatInt(l.Memory, 10)
		if slices.Contains(v2, "memory") {
			// memory.max and memory.swap.max are separate budgets on v2:
			// no swap at all is what keeps memory.max honest.
			w = append(w,
				fileWrite{controller: "memory", file: "memory.max", value: v},
				fileWrite{controller: "memory", file: "memory.swap.max", value: "0", optional: true})
		} else {
			// v1 memsw counts memory plus swap and must never be below
			// limit_in_bytes, so it is written second, to the same value.
			w = append(w,
				fileWrite{controller: "memory", file: "memory.limit_in_bytes", value: v},
				fileWrite{controller: "memory", file: "memory.memsw.limit_in_bytes", value: v, optional: true})
		}
	}
	if l.CPUs != 0 {
		q, err := cpuQuota(l.CPUs)
		if err != nil {
			return nil, err
		}
		if slices.Contains(v2, "cpu") {
			w = append(w, fileWrite{controller: "cpu", file: "cpu.max", value: fmt.Sprintf("%d %d", q, cpuPeriod)})
		} else {
			w = append(w,
				fileWrite{controller: "cpu", file: "cpu.cfs_period_us", value: strconv.Itoa(cpuPeriod)},
				fileWrite{controller: "cpu", file: "cpu.cfs_quota_us", value: strconv.FormatInt(q, 10)})
		}
	}
	if l.Pids != 0 {
		v, err := pidsMax(l.Pids)
		if err != nil {
			return nil, err
		}
		w = append(w, fileWrite{controller: "pids", file: "pids.max", value: v})
	}
	return w, nil
}

// cpuQuota turns cores into a CFS quota in µs per cpuPeriod.
func cpuQuota(cpus float64) (int64, error) {
	if math.IsNaN(cpus) || cpus < 0 || cpus > maxCPUs {
		return 0, fmt.Errorf("%w: cpus %v is not between 0 and %d", ErrInvalidLimit, cpus, maxCPUs)
	}
	q := int64(math.Round(cpus * cpuPeriod))
	return max(q, minQuota), nil
}

// pidsMax returns the pids.max value for a task limit.
func pidsMax(n int) (string, error) {
	if n < 0 {
		return "", fmt.Errorf("%w: pids %d is negative", ErrInvalidLimit, n)
	}
	if n >= pidMaxLimit {
		return "max", nil
	}
	return strconv.Itoa(n), nil
}

// parseInt parses a file holding one integer, like memory.current.
func parseInt(b []byte, input string) (int64, error) {
	s := strings.TrimSpace(string(b))
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, &ParseError{Input: input, Line: 1, Field: "value", Err: fmt.Errorf("%w: %q is not an integer", ErrMalformed, s)}
	}
	return n, nil
}

// parseKeyed returns the value of key in a flat keyed file ("key value"
// lines, like cpu.stat, memory.events or memory.oom_control).
func parseKeyed(b []byte, input, key string) (int64, error) {
	for i, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok || k != key {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return 0, &ParseError{Input: input, Line: i + 1, Field: key, Err: fmt.Errorf("%w: %q is not an integer", ErrMalformed, v)}
		}
		return n, nil
	}
	return 0, &ParseError{Input: input, Line: 0, Field: key, Err: fmt.Errorf("%w: key missing", ErrMalformed)}
}

// parsePids parses cgroup.procs: one pid a line. v1 promises neither order
// nor uniqueness, so callers merge.
func parsePids(b []byte, input string) ([]int, error) {
	var pids []int
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		pid, err := strconv.Atoi(line)
		if err != nil || pid <= 0 {
			return nil, &ParseError{Input: input, Line: i + 1, Field: "pid", Err: fmt.Errorf("%w: %q is not a pid", ErrMalformed, line)}
		}
		pids = append(pids, pid)
	}
	return pids, nil
}
