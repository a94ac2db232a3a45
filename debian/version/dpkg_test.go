package version

import (
	"bufio"
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
)

// loadVersions reads testdata/versions.txt: real Version strings from a
// Debian Packages index (see testdata/README.md).
func loadVersions(t testing.TB) []string {
	t.Helper()
	path := filepath.Join("..", "..", "testdata", "versions.txt")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read versions: %v", err)
	}
	var out []string
	for line := range strings.Lines(string(data)) {
		if s := strings.TrimSpace(line); s != "" {
			out = append(out, s)
		}
	}
	if len(out) < 1000 {
		t.Fatalf("read versions: %s has %d versions, want at least 1000", path, len(out))
	}
	return out
}

func parseAll(t testing.TB, ss []string) []Version {
	t.Helper()
	vs := make([]Version, len(ss))
	for i, s := range ss {
		v, err := Parse(s)
		if err != nil {
			t.Fatalf("real archive version rejected: %v", err)
		}
		if got := v.String(); got != s && !strings.HasPrefix(s, "0:") {
			t.Errorf("Parse(%q).String() = %q, want the input back", s, got)
		}
		vs[i] = v
	}
	return vs
}

type pair struct{ a, b string }

// pairsFor builds the pairs checked against dpkg, deterministically:
// neighbours after a seeded shuffle (unrelated versions), neighbours in byte
// order (versions sharing a long prefix), neighbours in Compare's order (the
// close calls that decide a sort), and each version against a tilde and a
// "+b1" variant of itself.
func pairsFor(ss []string, vs []Version) []pair {
	var ps []pair
	shuffled := slices.Clone(ss)
	rng := rand.New(rand.NewPCG(1, 2))
	rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	for i := 1; i < len(shuffled); i++ {
		ps = append(ps, pair{shuffled[i-1], shuffled[i]})
	}
	bytewise := slices.Clone(ss)
	slices.Sort(bytewise)
	for i := 1; i < len(bytewise); i++ {
		ps = append(ps, pair{bytewise[i-1], bytewise[i]})
	}
	sorted := slices.Clone(vs)
	slices.SortStableFunc(sorted, Compare)
	for i := 1; i < len(sorted); i++ {
		ps = append(ps, pair{sorted[i-1].String(), sorted[i].String()})
	}
	for i, s := range ss {
		if i%7 != 0 {
			continue
		}
		ps = append(ps, pair{s, s + "~"}, pair{s, s + "+b1"})
	}
	return ps
}

// TestCompareAgainstDpkg checks Compare against dpkg --compare-versions on
// thousands of pairs of real versions. Each pair is checked with one dpkg call
// for the relation Compare predicts, in a shell loop per CPU to keep the
// process count (and the run time) down.
func TestCompareAgainstDpkg(t *testing.T) {
	dpkg, err := exec.LookPath("dpkg")
	if err != nil {
		t.Skip("dpkg not found in PATH; it is the reference for Compare")
	}
	ss := loadVersions(t)
	vs := parseAll(t, ss)
	ps := pairsFor(ss, vs)
	if testing.Short() {
		ps = ps[:len(ps)/10]
	}

	op := map[int]string{-1: "lt", 0: "eq", 1: "gt"}
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = fmt.Sprintf("%s %s %s", p.a, op[Compare(MustParse(p.a), MustParse(p.b))], p.b)
	}

	// Every line is answered by "ok" or "FAIL" in order, so results map back.
	const script = `while read -r a op b; do
	if "$0" --compare-versions "$a" "$op" "$b"; then echo ok; else echo "FAIL $?"; fi
done`
	workers := max(runtime.NumCPU(), 2)
	var wg sync.WaitGroup
	results := make([][]string, workers)
	errs := make([]error, workers)
	for w := range workers {
		lo, hi := w*len(lines)/workers, (w+1)*len(lines)/workers
		wg.Go(func() {
			cmd := exec.Command("sh", "-c", script, dpkg)
			cmd.Stdin = strings.NewReader(strings.Join(lines[lo:hi], "\n") + "\n")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				errs[w] = fmt.Errorf("run dpkg loop: %v: %s", err, stderr.Bytes())
				return
			}
			if stderr.Len() > 0 {
				errs[w] = fmt.Errorf("dpkg complained: %s", stderr.Bytes())
			}
			sc := bufio.NewScanner(bytes.NewReader(out))
			for sc.Scan() {
				results[w] = append(results[w], sc.Text())
			}
			if len(results[w]) != hi-lo {
				errs[w] = fmt.Errorf("dpkg loop answered %d of %d pairs", len(results[w]), hi-lo)
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}

	failures := 0
	i := 0
	for _, res := range results {
		for _, r := range res {
			if r != "ok" {
				failures++
				if failures <= 20 {
					t.Errorf("Compare says %q but dpkg --compare-versions disagrees (%s)", lines[i], r)
				}
			}
			i++
		}
	}
	if failures > 20 {
		t.Errorf("... %d disagreements in all", failures)
	}
	t.Logf("checked %d pairs against %s", len(ps), dpkg)
}

// TestCompareOrderConsistent checks that Compare is a total order on the real
// versions: sorting is stable under re-sorting from other starting orders,
// Compare is antisymmetric on every pair of neighbours and transitive on a
// seeded sample of triples.
func TestCompareOrderConsistent(t *testing.T) {
	vs := parseAll(t, loadVersions(t))
	sorted := slices.Clone(vs)
	slices.SortFunc(sorted, Compare)

	for i := 1; i < len(sorted); i++ {
		a, b := sorted[i-1], sorted[i]
		if c := Compare(a, b); c > 0 {
			t.Fatalf("after sorting, %q comes before %q but Compare = %d", a, b, c)
		}
		if Compare(a, b) != -Compare(b, a) {
			t.Errorf("Compare(%q, %q) = %d but Compare(%q, %q) = %d", a, b, Compare(a, b), b, a, Compare(b, a))
		}
	}

	rng := rand.New(rand.NewPCG(3, 4))
	reversed := slices.Clone(vs)
	slices.Reverse(reversed)
	rng.Shuffle(len(reversed)/2, func(i, j int) { reversed[i], reversed[j] = reversed[j], reversed[i] })
	slices.SortFunc(reversed, Compare)
	for i := range sorted {
		if Compare(sorted[i], reversed[i]) != 0 {
			t.Fatalf("sort order depends on input order at %d: %q vs %q", i, sorted[i], reversed[i])
		}
	}

	for range 200000 {
		a, b, c := vs[rng.IntN(len(vs))], vs[rng.IntN(len(vs))], vs[rng.IntN(len(vs))]
		if Compare(a, a) != 0 {
			t.Fatalf("Compare(%q, %q) = %d, want 0", a, a, Compare(a, a))
		}
		if Compare(a, b) <= 0 && Compare(b, c) <= 0 && Compare(a, c) > 0 {
			t.Fatalf("not transitive: %q <= %q <= %q but %q > %q", a, b, c, a, c)
		}
	}
}
