package cgroup

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
)

// Mount tables as the kernel prints them, trimmed to what matters.
const (
	// CentOS 7, systemd in legacy mode: v1 only, cpu and cpuacct co-mounted.
	mountinfoV1 = `18 60 0:17 / /sys rw,nosuid,nodev,noexec,relatime shared:6 - sysfs sysfs rw
24 18 0:20 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:7 - tmpfs tmpfs ro,mode=755
25 24 0:21 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:8 - cgroup cgroup rw,xattr,release_agent=/usr/lib/systemd/systemd-cgroups-agent,name=systemd
28 24 0:24 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:10 - cgroup cgroup rw,cpuacct,cpu
29 24 0:25 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,memory
30 24 0:26 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:12 - cgroup cgroup rw,pids
31 24 0:27 / /sys/fs/cgroup/freezer rw,nosuid,nodev,noexec,relatime shared:13 - cgroup cgroup rw,freezer
32 24 0:28 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,net_prio,net_cls
`
	// Debian 12: v2 only.
	mountinfoV2 = `22 28 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
26 22 0:23 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
`
	// Ubuntu 20.04, systemd in hybrid mode.
	mountinfoHybrid = `30 23 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate
32 30 0:28 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,xattr,name=systemd
35 30 0:31 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,memory
36 30 0:32 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:16 - cgroup cgroup rw,cpu,cpuacct
37 30 0:33 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:17 - cgroup cgroup rw,pids
38 30 0:34 / /sys/fs/cgroup/freezer rw,nosuid,nodev,noexec,relatime shared:18 - cgroup cgroup rw,freezer
`
	// The Firecracker VM this package was written on: hybrid, each
	// controller in its own hierarchy, the unified one offering hugetlb.
	mountinfoVM = `27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`
)

// where renders the plan as controller → "v1:/path" or "v2:/path".
func where(p *plan) map[string]string {
	m := map[string]string{}
	for _, c := range p.v2 {
		m[c] = "v2:" + p.unified.mount
	}
	for c, h := range p.v1ctl {
		m[c] = "v1:" + h.mount
	}
	return m
}

func TestPlan(t *testing.T) {
	tests := []struct {
		name      string
		mountinfo string
		avail     string // the unified root's cgroup.controllers
		kind      string
		unified   string
		want      map[string]string
	}{
		{"v1", mountinfoV1, "", "v1", "", map[string]string{
			"memory":  "v1:/sys/fs/cgroup/memory",
			"cpu":     "v1:/sys/fs/cgroup/cpu,cpuacct",
			"cpuacct": "v1:/sys/fs/cgroup/cpu,cpuacct",
			"pids":    "v1:/sys/fs/cgroup/pids",
			"freezer": "v1:/sys/fs/cgroup/freezer",
		}},
		{"v2", mountinfoV2, "cpuset cpu io memory hugetlb pids rdma misc", "v2", "/sys/fs/cgroup", map[string]string{
			"memory": "v2:/sys/fs/cgroup",
			"cpu":    "v2:/sys/fs/cgroup",
			"pids":   "v2:/sys/fs/cgroup",
		}},
		{"v2 without memory", mountinfoV2, "cpu pids", "v2", "/sys/fs/cgroup", map[string]string{
			"cpu":  "v2:/sys/fs/cgroup",
			"pids": "v2:/sys/fs/cgroup",
		}},
		{"hybrid", mountinfoHybrid, "", "hybrid", "/sys/fs/cgroup/unified", map[string]string{
			"memory":  "v1:/sys/fs/cgroup/memory",
			"cpu":     "v1:/sys/fs/cgroup/cpu,cpuacct",
			"cpuacct": "v1:/sys/fs/cgroup/cpu,cpuacct",
			"pids":    "v1:/sys/fs/cgroup/pids",
			"freezer": "v1:/sys/fs/cgroup/freezer",
		}},
		{"hybrid vm", mountinfoVM, "hugetlb", "hybrid", "/sys/fs/cgroup/unified", map[string]string{
			"memory":  "v1:/sys/fs/cgroup/memory",
			"cpu":     "v1:/sys/fs/cgroup/cpu",
			"cpuacct": "v1:/sys/fs/cgroup/cpuacct",
			"pids":    "v1:/sys/fs/cgroup/pids",
			"freezer": "v1:/sys/fs/cgroup/freezer",
		}},
		// pids moved to the unified hierarchy (booted with
		// cgroup_no_v1=pids): v2 serves it, v1 the rest.
		{"hybrid with pids on v2", strings.ReplaceAll(mountinfoHybrid, "37 30 0:33 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:17 - cgroup cgroup rw,pids\n", ""),
			"pids", "hybrid", "/sys/fs/cgroup/unified", map[string]string{
				"memory":  "v1:/sys/fs/cgroup/memory",
				"cpu":     "v1:/sys/fs/cgroup/cpu,cpuacct",
				"cpuacct": "v1:/sys/fs/cgroup/cpu,cpuacct",
				"pids":    "v2:/sys/fs/cgroup/unified",
				"freezer": "v1:/sys/fs/cgroup/freezer",
			}},
		// The cpu hierarchy bind-mounted a second time: the first serves.
		{"v1 mounted twice", mountinfoV1 + "90 24 0:24 / /mnt/cpu rw,relatime - cgroup cgroup rw,cpu,cpuacct\n", "", "v1", "", map[string]string{
			"memory":  "v1:/sys/fs/cgroup/memory",
			"cpu":     "v1:/sys/fs/cgroup/cpu,cpuacct",
			"cpuacct": "v1:/sys/fs/cgroup/cpu,cpuacct",
			"pids":    "v1:/sys/fs/cgroup/pids",
			"freezer": "v1:/sys/fs/cgroup/freezer",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hs, err := parseMountinfo(strings.NewReader(tt.mountinfo), "sample")
			if err != nil {
				t.Fatal(err)
			}
			p, err := makePlan(hs, strings.Fields(tt.avail))
			if err != nil {
				t.Fatal(err)
			}
			if p.kind != tt.kind {
				t.Errorf("kind = %q, want %q", p.kind, tt.kind)
			}
			var unified string
			if p.unified != nil {
				unified = p.unified.mount
			}
			if unified != tt.unified {
				t.Errorf("unified hierarchy at %q, want %q", unified, tt.unified)
			}
			got := where(p)
			for c, w := range tt.want {
				if got[c] != w {
					t.Errorf("%s served by %q, want %q", c, got[c], w)
				}
			}
			for c, g := range got {
				if _, ok := tt.want[c]; !ok {
					t.Errorf("%s served by %q, want by none", c, g)
				}
			}
			// Each hierarchy holds the group once, whatever it serves.
			bases := p.bases()
			if len(slices.Compact(slices.Clone(bases))) != len(bases) {
				t.Errorf("bases %v repeat a hierarchy", bases)
			}
		})
	}
}

func TestParseMountinfoControllers(t *testing.T) {
	hs, err := parseMountinfo(strings.NewReader(mountinfoV1), "sample")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, h := range hs {
		got = append(got, h.mount+"="+strings.Join(h.controllers, ","))
	}
	want := []string{
		"/sys/fs/cgroup/cpu,cpuacct=cpu,cpuacct",
		"/sys/fs/cgroup/memory=memory",
		"/sys/fs/cgroup/pids=pids",
		"/sys/fs/cgroup/freezer=freezer",
		"/sys/fs/cgroup/net_cls,net_prio=net_cls,net_prio",
	}
	if !slices.Equal(got, want) {
		t.Errorf("hierarchies:\n got %q\nwant %q (name=systemd left out)", got, want)
	}
	if hs[1].major != 0 || hs[1].minor != 25 {
		t.Errorf("memory device = %d:%d, want 0:25", hs[1].major, hs[1].minor)
	}
}

func TestParseMountinfoEscapes(t *testing.T) {
	in := `50 24 0:40 / /mnt/my\040cgroups\134x rw - cgroup2 cgroup2 rw` + "\n"
	hs, err := parseMountinfo(strings.NewReader(in), "sample")
	if err != nil {
		t.Fatal(err)
	}
	if len(hs) != 1 || hs[0].mount != `/mnt/my cgroups\x` {
		t.Errorf("got %+v, want one mount at %q", hs, `/mnt/my cgroups\x`)
	}
}

func TestParseMountinfoErrors(t *testing.T) {
	tests := []struct {
		name, in string
		line     int
		field    string
	}{
		{"no separator", "22 28 0:21 / /sys rw shared:7 sysfs sysfs rw\n", 1, "separator"},
		{"short", "22 28 0:21 / - sysfs sysfs rw\n", 1, "mount point"},
		{"no super options", mountinfoV2 + "26 22 0:23 / /x rw - cgroup2 cgroup2\n", 3, "super options"},
		{"bad device", "26 22 zero / /x rw - cgroup2 cgroup2 rw\n", 1, "major:minor"},
		{"bad escape", `26 22 0:23 / /x\09 rw - cgroup2 cgroup2 rw` + "\n", 1, "mount point"},
		{"truncated escape", `26 22 0:23 / /x\04 rw - cgroup2 cgroup2 rw` + "\n", 1, "mount point"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseMountinfo(strings.NewReader(tt.in), "sample")
			var pe *ParseError
			if !errors.As(err, &pe) || !errors.Is(err, ErrMalformed) {
				t.Fatalf("err = %v, want a ParseError wrapping ErrMalformed", err)
			}
			if pe.Input != "sample" || pe.Line != tt.line || pe.Field != tt.field {
				t.Errorf("error at %s line %d field %q, want sample line %d field %q", pe.Input, pe.Line, pe.Field, tt.line, tt.field)
			}
		})
	}
}

func TestMakePlanNothingMounted(t *testing.T) {
	hs, err := parseMountinfo(strings.NewReader("27 1 254:0 / / rw - ext4 /dev/vda rw\n"), "sample")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := makePlan(hs, nil); !errors.Is(err, ErrNoCgroups) {
		t.Errorf("err = %v, want ErrNoCgroups", err)
	}
}

func TestDescribe(t *testing.T) {
	hs, err := parseMountinfo(strings.NewReader(mountinfoVM), "sample")
	if err != nil {
		t.Fatal(err)
	}
	p, err := makePlan(hs, []string{"hugetlb"})
	if err != nil {
		t.Fatal(err)
	}
	want := "hybrid: processes: v2 at /sys/fs/cgroup/unified (offers: hugetlb); memory: v1 at /sys/fs/cgroup/memory; " +
		"cpu: v1 at /sys/fs/cgroup/cpu; cpuacct: v1 at /sys/fs/cgroup/cpuacct; pids: v1 at /sys/fs/cgroup/pids; freezer: v1 at /sys/fs/cgroup/freezer"
	if got := p.describe(); got != want {
		t.Errorf("describe:\n got %s\nwant %s", got, want)
	}

	hs, err = parseMountinfo(strings.NewReader(mountinfoV2), "sample")
	if err != nil {
		t.Fatal(err)
	}
	p, err = makePlan(hs, []string{"cpu", "io"})
	if err != nil {
		t.Fatal(err)
	}
	want = "v2: processes: v2 at /sys/fs/cgroup (offers: cpu io); memory: none; cpu: v2 at /sys/fs/cgroup; pids: none"
	if got := p.describe(); got != want {
		t.Errorf("describe:\n got %s\nwant %s", got, want)
	}
}

func TestToEnable(t *testing.T) {
	got, err := toEnable([]string{"cpuset", "cpu", "io", "memory", "pids"}, []string{"memory"}, []string{"memory", "cpu", "pids"})
	if err != nil || !slices.Equal(got, []string{"cpu", "pids"}) {
		t.Errorf("toEnable = %v, %v; want [cpu pids]", got, err)
	}
	if _, err := toEnable([]string{"cpu"}, nil, []string{"memory"}); !errors.Is(err, ErrUnsupported) {
		t.Errorf("enabling a controller the parent lacks: err = %v, want ErrUnsupported", err)
	}
}

func TestCheckName(t *testing.T) {
	for _, ok := range []string{"jailmgr/0123abcd", "jailmgr", "jailmgr-test/x_y.z", "a/b/c@1:2+3"} {
		if err := checkName(ok); err != nil {
			t.Errorf("checkName(%q) = %v, want nil", ok, err)
		}
	}
	for _, bad := range []string{"", "/jailmgr/x", "..", "jailmgr/..", "jailmgr/../../etc", "jailmgr//x", "jailmgr/", ".",
		"jailmgr/./x", "jailmgr/.hidden", "jailmgr/cgroup.procs", "jailmgr/memory.max", "jail mgr", "jailmgr/x\x00", "jailmgr/é",
		strings.Repeat("a", 256)} {
		if err := checkName(bad); !errors.Is(err, ErrInvalidName) {
			t.Errorf("checkName(%q) = %v, want ErrInvalidName", bad, err)
		}
	}
}

func TestLimitWrites(t *testing.T) {
	type w = fileWrite
	tests := []struct {
		name string
		l    Limits
		v2   []string
		want []fileWrite
	}{
		{"none", Limits{}, nil, nil},
		{"v1 all", Limits{Memory: 64 << 20, CPUs: 0.5, Pids: 20}, nil, []fileWrite{
			{"memory", "memory.limit_in_bytes", "67108864", false},
			{"memory", "memory.memsw.limit_in_bytes", "67108864", true},
			{"cpu", "cpu.cfs_period_us", "100000", false},
			{"cpu", "cpu.cfs_quota_us", "50000", false},
			{"pids", "pids.max", "20", false},
		}},
		{"v2 all", Limits{Memory: 1 << 30, CPUs: 2, Pids: 100}, []string{"memory", "cpu", "pids"}, []fileWrite{
			{"memory", "memory.max", "1073741824", false},
			{"memory", "memory.swap.max", "0", true},
			{"cpu", "cpu.max", "200000 100000", false},
			{"pids", "pids.max", "100", false},
		}},
		{"mixed", Limits{CPUs: 1.25, Pids: 1 << 30}, []string{"pids"}, []fileWrite{
			{"cpu", "cpu.cfs_period_us", "100000", false},
			{"cpu", "cpu.cfs_quota_us", "125000", false},
			{"pids", "pids.max", "max", false},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := limitWrites(tt.l, tt.v2)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("writes:\n got %v\nwant %v", got, tt.want)
			}
		})
	}
	for _, bad := range []Limits{{Memory: -1}, {Memory: 4096}, {CPUs: -0.5}, {CPUs: math.NaN()}, {CPUs: math.Inf(1)}, {CPUs: math.Inf(-1)}, {Pids: -3}} {
		if _, err := limitWrites(bad, nil); !errors.Is(err, ErrInvalidLimit) {
			t.Errorf("limitWrites(%+v) = %v, want ErrInvalidLimit", bad, err)
		}
	}
}

func TestCPUQuota(t *testing.T) {
	for _, tt := range []struct {
		cpus float64
		want int64
	}{{0.5, 50000}, {1, 100000}, {3, 300000}, {0.333, 33300}, {0.001, minQuota}, {0.0000001, minQuota}} {
		got, err := cpuQuota(tt.cpus)
		if err != nil || got != tt.want {
			t.Errorf("cpuQuota(%v) = %d, %v; want %d", tt.cpus, got, err, tt.want)
		}
	}
}

func TestNeeded(t *testing.T) {
	if got := needed(Limits{Memory: 1 << 30, Pids: 5}); !slices.Equal(got, []string{"memory", "pids"}) {
		t.Errorf("needed = %v, want [memory pids]", got)
	}
	if got := needed(Limits{}); got != nil {
		t.Errorf("needed(no limits) = %v, want none", got)
	}
}

func TestParseFiles(t *testing.T) {
	stat := "usage_usec 1234567\nuser_usec 1000000\nsystem_usec 234567\nnr_periods 0\n"
	if n, err := parseKeyed([]byte(stat), "cpu.stat", "usage_usec"); err != nil || n != 1234567 {
		t.Errorf("usage_usec = %d, %v; want 1234567", n, err)
	}
	oom := "oom_kill_disable 1\nunder_oom 0\noom_kill 3\n"
	if n, err := parseKeyed([]byte(oom), "memory.oom_control", "oom_kill"); err != nil || n != 3 {
		t.Errorf("oom_kill = %d, %v; want 3", n, err)
	}
	if _, err := parseKeyed([]byte(oom), "memory.oom_control", "missing"); !errors.Is(err, ErrMalformed) {
		t.Errorf("missing key: err = %v, want ErrMalformed", err)
	}
	var pe *ParseError
	if _, err := parseKeyed([]byte("a 1\nusage_usec x\n"), "cpu.stat", "usage_usec"); !errors.As(err, &pe) || pe.Line != 2 {
		t.Errorf("bad value: err = %v, want a ParseError at line 2", err)
	}
	if n, err := parseInt([]byte("67108864\n"), "memory.current"); err != nil || n != 64<<20 {
		t.Errorf("parseInt = %d, %v", n, err)
	}
	if _, err := parseInt([]byte("max\n"), "memory.max"); !errors.Is(err, ErrMalformed) {
		t.Errorf("parseInt(max): err = %v, want ErrMalformed", err)
	}
	pids, err := parsePids([]byte("12\n7\n12\n"), "cgroup.procs")
	if err != nil || !slices.Equal(pids, []int{12, 7, 12}) {
		t.Errorf("parsePids = %v, %v", pids, err)
	}
	if _, err := parsePids([]byte("12\n0\n"), "cgroup.procs"); !errors.As(err, &pe) || pe.Line != 2 {
		t.Errorf("parsePids with pid 0: err = %v, want a ParseError at line 2", err)
	}
}

func TestKillErrorShort(t *testing.T) {
	pids := make([]int, 500)
	for i := range pids {
		pids[i] = i + 1
	}
	err := &KillError{Group: "jailmgr/x", Pids: pids}
	if !errors.Is(err, ErrSurvivors) || len(err.Error()) > 200 {
		t.Errorf("KillError = %q (Is ErrSurvivors: %v), want short and wrapping ErrSurvivors", err, errors.Is(err, ErrSurvivors))
	}
}
