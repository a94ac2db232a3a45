package scripts

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// e2eBash runs script with e2e.sh's functions loaded and returns its stdout.
func e2eBash(t *testing.T, script string, env ...string) string {
	t.Helper()
	cmd := exec.Command("bash", "-c", "source ./e2e.sh\n"+script)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("bash: %v\nstderr:\n%s", err, stderr.String())
	}
	return stdout.String()
}

func needTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed", tool)
		}
	}
}

// The e2e's expected package set over several pockets takes, of each
// package, the newest version: its awk vercmp must order versions as dpkg
// does.
func TestVercmpAwkAgreesWithDpkg(t *testing.T) {
	needTools(t, "bash", "awk", "dpkg")
	versions := []string{
		"1.0", "1.0~rc1", "1.0~~", "1.0~rc1~1", "1:0.1", "2:1", "0:1.0", "1.0-1", "1.0-1ubuntu1",
		"1.0-1build1", "1.0-1ubuntu1.2", "1.0-1ubuntu1.10", "1.0+dfsg", "1.0a", "1.0.0", "001", "1.0~",
		"1", "10", "9", "1.2.3~", "1.2.3", "0.9~a", "0.9~b", "5.3.28+dfsg2-7",
		"5.3.28+dfsg2-7ubuntu0.1", "1.0-1~bpo12+1", "1.0-1+deb12u1", "1.0+b1", "2.30-0ubuntu2",
		"2.30-0ubuntu2.1", "1.5.3-5ubuntu5", "1.5.3-5ubuntu5.7", "38ubuntu0~20.04", "20.3",
		"1.1.2-8ubuntu1~24.04.3", "1:6.7-1build1", "3.0-1-2", "3.0-1-10", "1.0.a", "1.0.+", "1.0.~",
		"1.0-0", "1.0-00", "1.00", "2.7.14build2", "2.8.4ubuntu0.1", "1.0-a", "1.0-A", "1.0-+",
	}
	var pairs strings.Builder
	for _, a := range versions {
		for _, b := range versions {
			fmt.Fprintf(&pairs, "%s %s\n", a, b)
		}
	}
	got := e2eBash(t, `LC_ALL=C awk "$VERCMP_AWK"'{ r = vercmp($1, $2); print (r < 0 ? "lt" : r > 0 ? "gt" : "eq") }' "$PAIRS"`,
		"PAIRS="+writeFile(t, "pairs", pairs.String()))
	results := strings.Fields(got)
	if len(results) != len(versions)*len(versions) {
		t.Fatalf("awk printed %d results for %d pairs", len(results), len(versions)*len(versions))
	}
	// dpkg's order: the versions sorted with dpkg --compare-versions (a few
	// hundred calls, not one per pair), each given the rank of its class of
	// equals.
	dpkgLess := func(a, b string) bool { return exec.Command("dpkg", "--compare-versions", a, "lt", b).Run() == nil }
	sorted := slices.Clone(versions)
	slices.SortStableFunc(sorted, func(a, b string) int {
		if dpkgLess(a, b) {
			return -1
		}
		if dpkgLess(b, a) {
			return 1
		}
		return 0
	})
	rank := map[string]int{}
	for i, v := range sorted {
		rank[v] = i
		if i > 0 && !dpkgLess(sorted[i-1], v) {
			rank[v] = rank[sorted[i-1]]
		}
	}
	i := 0
	for _, a := range versions {
		for _, b := range versions {
			want := "eq"
			if rank[a] < rank[b] {
				want = "lt"
			} else if rank[a] > rank[b] {
				want = "gt"
			}
			if results[i] != want {
				t.Errorf("vercmp(%q, %q) = %s, dpkg says %s", a, b, results[i], want)
			}
			i++
		}
	}
}

// local_archive merges the pockets' indexes as apt chooses among them: of
// each package the newest version, the earlier pocket's of two equal ones,
// with only the fields debootstrap reads, and a Release that lists the
// merged index.
func TestLocalArchiveTakesNewestAcrossPockets(t *testing.T) {
	needTools(t, "bash", "awk", "xz", "sha256sum", "stat")
	dir := t.TempDir()
	stanza := func(name, version, extra string) string {
		return fmt.Sprintf("Package: %s\nVersion: %s\nArchitecture: amd64\nPriority: optional\nMaintainer: Someone\n%sFilename: pool/%s_%s.deb\nSize: 1\nSHA256: %s\nDescription: a package\n long text\n\n",
			name, version, extra, name, version, strings.Repeat("0", 64))
	}
	pockets := []string{
		// release
		stanza("a", "1.0-1", "Depends: b\n") + stanza("b", "2.0-1", "") + stanza("c", "1.0", "") + stanza("d", "1:0.5", ""),
		// updates: a newer a that gained a dependency, an older c, an equal d
		stanza("a", "1.0-1ubuntu0.1", "Depends: b, e\n") + stanza("c", "1.0~rc1", "") + stanza("d", "1:0.5", "Depends: updates-copy\n") + stanza("e", "3", ""),
		// security: a between the two, b newer by its epoch
		stanza("a", "1.0-1a", "") + stanza("b", "1:1.0", "Pre-Depends: c\n"),
	}
	for i, p := range pockets {
		xz := exec.Command("xz", "-c")
		xz.Stdin = strings.NewReader(p)
		out, err := xz.Output()
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%d.main.xz", i)), out, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	e2eBash(t, `local_archive "$DIR" 3 mysuite amd64 main "$DIR/out"`, "DIR="+dir)
	merged, err := os.ReadFile(filepath.Join(dir, "out/dists/mysuite/main/binary-amd64/Packages"))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, para := range strings.Split(strings.TrimSpace(string(merged)), "\n\n") {
		var name string
		for _, line := range strings.Split(para, "\n") {
			k, v, _ := strings.Cut(line, ": ")
			switch k {
			case "Package":
				name = v
			case "Maintainer", "Description":
				t.Errorf("merged index keeps field %s, which debootstrap does not read", k)
			}
		}
		if _, dup := got[name]; dup {
			t.Errorf("merged index has %s twice", name)
		}
		got[name] = para
	}
	want := map[string]string{
		"a": "Version: 1.0-1ubuntu0.1\nArchitecture: amd64\nPriority: optional\nDepends: b, e", // updates beats release and security
		"b": "Version: 1:1.0\nArchitecture: amd64\nPriority: optional\nPre-Depends: c",         // the epoch wins
		"c": "Version: 1.0\nArchitecture: amd64",                                               // 1.0~rc1 sorts before 1.0
		"d": "Version: 1:0.5\nArchitecture: amd64\nPriority: optional\nFilename",               // equal: the release's stanza
		"e": "Version: 3\n",
	}
	if len(got) != len(want) {
		t.Errorf("merged index has %d packages, want %d:\n%s", len(got), len(want), merged)
	}
	for name, w := range want {
		if !strings.Contains(got[name], w) {
			t.Errorf("package %s: got\n%s\nwant it to contain\n%s", name, got[name], w)
		}
	}
	if strings.Contains(got["d"], "updates-copy") {
		t.Errorf("d: the later pocket's stanza of an equal version was taken:\n%s", got["d"])
	}
	rel, err := os.ReadFile(filepath.Join(dir, "out/dists/mysuite/Release"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(merged)
	line := fmt.Sprintf(" %s %d main/binary-amd64/Packages", hex.EncodeToString(sum[:]), len(merged))
	if !strings.Contains(string(rel), "Suite: mysuite\n") || !strings.Contains(string(rel), "\nSHA256:\n"+line+"\n") {
		t.Errorf("Release does not name the suite and list the merged index as %q:\n%s", line, rel)
	}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
