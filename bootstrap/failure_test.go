package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// testdata/dpkg-failure.log is the log of a real configure run
// (TestPostinstFailureNamed's, made of the host's bookworm packages): the
// postinst of jm-broken fails, and jm-needs-broken, which depends on it,
// is left unconfigured.
func TestFailuresFromRealLog(t *testing.T) {
	data, err := os.ReadFile("testdata/dpkg-failure.log")
	if err != nil {
		t.Fatal(err)
	}
	got := failuresFromLog(string(data))
	want := []PackageFailure{
		{Package: "jm-broken", Output: []string{
			"Setting up jm-broken (2.1-3) ...",
			"jm-broken: looking for the frobnicator",
			"jm-broken: the frobnicator is missing",
			"dpkg: error processing package jm-broken (--configure):",
			" installed jm-broken package post-installation script subprocess returned error exit status 1",
		}},
		{Package: "jm-needs-broken", Output: []string{
			"dpkg: dependency problems prevent configuration of jm-needs-broken:",
			" jm-needs-broken depends on jm-broken; however:",
			"  Package jm-broken is not configured yet.",
			"",
			"dpkg: error processing package jm-needs-broken (--configure):",
			" dependency problems - leaving unconfigured",
		}},
	}
	if !equalFailures(got, want) {
		t.Errorf("failuresFromLog =\n%s\nwant\n%s", showFailures(got), showFailures(want))
	}
}

func TestFailuresFromLog(t *testing.T) {
	long := []string{"Setting up jm-chatty:amd64 (1) ..."}
	for i := range 100 {
		long = append(long, fmt.Sprintf("chatty line %d", i))
	}
	long = append(long, "dpkg: error processing package jm-chatty:amd64 (--configure):",
		" installed jm-chatty:amd64 package post-installation script subprocess returned error exit status 2")
	for _, c := range []struct {
		name string
		log  []string
		want []PackageFailure
	}{
		{
			name: "a Multi-Arch: same package, the next one set up, triggers",
			log: []string{
				"jailmgr: preinst libc6",
				"Setting up libc6:amd64 (2.36-9) ...",
				"Setting up libfoo1:amd64 (1.0-1) ...",
				"libfoo1: cannot write /etc/foo.conf",
				"dpkg: error processing package libfoo1:amd64 (--configure):",
				" installed libfoo1:amd64 package post-installation script subprocess returned error exit status 1",
				"Setting up zz-next (1) ...",
				"zz-next says hello",
				"Processing triggers for libc-bin (2.36-9) ...",
				"Errors were encountered while processing:",
				" libfoo1:amd64",
			},
			want: []PackageFailure{{Package: "libfoo1:amd64", Output: []string{
				"Setting up libfoo1:amd64 (1.0-1) ...",
				"libfoo1: cannot write /etc/foo.conf",
				"dpkg: error processing package libfoo1:amd64 (--configure):",
				" installed libfoo1:amd64 package post-installation script subprocess returned error exit status 1",
			}}},
		},
		{
			name: "dpkg's older wording, the error listed without the architecture",
			log: []string{
				"Setting up jm-old (1) ...",
				"dpkg: error processing package jm-old:i386 (--configure):",
				" subprocess installed post-installation script returned error exit status 1",
				"Errors were encountered while processing:",
				" jm-old",
			},
			want: []PackageFailure{{Package: "jm-old", Output: []string{
				"Setting up jm-old (1) ...",
				"dpkg: error processing package jm-old:i386 (--configure):",
				" subprocess installed post-installation script returned error exit status 1",
			}}},
		},
		{
			name: "a long output, elided in the middle",
			log:  append(append([]string{}, long...), "Errors were encountered while processing:", " jm-chatty:amd64"),
			want: []PackageFailure{{Package: "jm-chatty:amd64", Output: append(append(append([]string{}, long[:19]...),
				"[... 64 lines left out: the full log has them ...]"), long[len(long)-20:]...)}},
		},
		{
			name: "a preinst fails: the script stops there",
			log: []string{
				"jailmgr: preinst base-passwd",
				"jailmgr: preinst jm-pre",
				"jm-pre: no room",
				"",
				"and more",
			},
			want: []PackageFailure{{Package: "jm-pre", Script: "preinst", Output: []string{
				"jailmgr: preinst jm-pre", "jm-pre: no room", "", "and more"}}},
		},
		{
			name: "dpkg itself fails after the preinsts, naming no package",
			log: []string{
				"jailmgr: preinst base-passwd",
				"dpkg: error: cannot access archive 'x': No such file or directory",
			},
		},
		{
			name: "dpkg set packages up and then failed, naming none",
			log: []string{
				"jailmgr: preinst base-passwd",
				"Setting up base-passwd (3.6.1) ...",
				"ldconfig: something",
			},
		},
		{
			name: "nothing of dpkg's or jailmgr's",
			log:  []string{"sh: 1: ldconfig: not found"},
		},
		{name: "an empty log"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := failuresFromLog(strings.Join(c.log, "\n") + "\n")
			if !equalFailures(got, c.want) {
				t.Errorf("failuresFromLog =\n%s\nwant\n%s", showFailures(got), showFailures(c.want))
			}
		})
	}
}

func TestConfigureErrorText(t *testing.T) {
	exit := errors.New("exit status 1")
	one := PackageFailure{Package: "jm-a", Output: []string{"Setting up jm-a (1) ...", "", "boom"}}
	for _, c := range []struct {
		err  *ConfigureError
		want string
	}{
		{&ConfigureError{Err: exit, Failures: []PackageFailure{one}},
			"configure packages: dpkg could not configure jm-a (exit status 1):\n  | Setting up jm-a (1) ...\n  |\n  | boom"},
		{&ConfigureError{Err: exit, Failures: []PackageFailure{{Package: "jm-p", Script: "preinst", Output: []string{"jailmgr: preinst jm-p", "no"}}}},
			"configure packages: preinst of jm-p failed (exit status 1):\n  | jailmgr: preinst jm-p\n  | no"},
		{&ConfigureError{Err: exit, Tail: []string{"sh: 1: ldconfig: not found"}},
			"configure packages: exit status 1\n  | sh: 1: ldconfig: not found"},
		{&ConfigureError{Err: exit, Failures: []PackageFailure{one, {Package: "b", Output: []string{"x"}}, {Package: "c"}, {Package: "d"}, {Package: "e"}}},
			"configure packages: dpkg could not configure jm-a, b, c, d, e (exit status 1)\njm-a:\n  | Setting up jm-a (1) ...\n  |\n  | boom\nb:\n  | x\nc:\n(2 more in the full log)"},
	} {
		if got := c.err.Error(); got != c.want {
			t.Errorf("Error() =\n%s\nwant\n%s", got, c.want)
		}
		if !errors.Is(c.err, exit) {
			t.Errorf("%v does not wrap its exit status", c.err)
		}
	}
}

// TestHookFailureNamed: a customize hook that fails is named, with what it
// printed and nothing of what ran before it.
func TestHookFailureNamed(t *testing.T) {
	logf, err := os.Create(filepath.Join(t.TempDir(), "bootstrap.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	logf.WriteString("Setting up dash (0.5.12-2) ...\n")
	err = runHooks(context.Background(), []string{`echo first hook on "$1"`, `echo 'hook two: no space left' >&2; exit 4`, "echo never"}, "/the/root", logf)
	want := "customize hook 2 (echo 'hook two: no space left' >&2; exit 4) failed (exit status 4):\n  | hook two: no space left"
	if err == nil || err.Error() != want {
		t.Errorf("runHooks: %v\nwant %s", err, want)
	}
	data, _ := os.ReadFile(logf.Name())
	if !strings.Contains(string(data), "jailmgr: customize hook 1: echo first hook on \"$1\"\nfirst hook on /the/root\n") || strings.Contains(string(data), "never") {
		t.Errorf("the log holds:\n%s", data)
	}
	err = runHooks(context.Background(), []string{"exit 1"}, "/the/root", logf)
	if want := "customize hook 1 (exit 1) failed (exit status 1), printing nothing"; err == nil || err.Error() != want {
		t.Errorf("runHooks: %v, want %s", err, want)
	}
}

func equalFailures(a, b []PackageFailure) bool {
	return slices.EqualFunc(a, b, func(x, y PackageFailure) bool {
		return x.Package == y.Package && x.Script == y.Script && slices.Equal(x.Output, y.Output)
	})
}

func showFailures(fs []PackageFailure) string {
	var b strings.Builder
	for _, f := range fs {
		fmt.Fprintf(&b, "%s (%q):\n", f.Package, f.Script)
		for _, l := range f.Output {
			fmt.Fprintf(&b, "  %q\n", l)
		}
	}
	if len(fs) == 0 {
		b.WriteString("(none)\n")
	}
	return b.String()
}
