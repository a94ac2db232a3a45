package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"jailmgr/conf"
)

// asSetuidUser runs the command line in-process as a setuid start by
// nobody would: the policy is decided on what cobra parsed.
func asSetuidUser(t *testing.T, args ...string) (int, string) {
	t.Helper()
	saved := privileged
	privileged.on, privileged.uid, privileged.gid = true, 65534, 65534
	// What takeSetuid leaves for session.Caller.
	t.Setenv("SUDO_UID", "65534")
	t.Setenv("SUDO_GID", "65534")
	defer func() { privileged = saved }()
	code, out, errb := jailmgr(t, args...)
	return code, out + errb
}

// TestSetuidPolicyParsedLine attacks the setuid policy with root-only
// commands and flags in every position and spelling cobra accepts: each is
// refused before the command's own code runs (nothing is created), and
// says why. A pre-scan of the line (the old checkSetuidArgs) let most of
// these through.
func TestSetuidPolicyParsedLine(t *testing.T) {
	dir := t.TempDir()
	store := filepath.Join(dir, "store")
	cfg := filepath.Join(dir, "mine.conf")
	os.WriteFile(cfg, []byte("[hostjail]\ndirectory = /\nroot-users = nobody\n"), 0o644)
	for _, c := range []struct {
		args []string
		want string
	}{
		// Root-only flags after the command, in both spellings.
		{[]string{"run", "--config", cfg, "hostjail", "-u", "root", "--", "id"}, "--config is for root only"},
		{[]string{"run", "hostjail", "--config=" + cfg, "-u", "root", "--", "id"}, "--config is for root only"},
		{[]string{"session", "begin", "hostjail", "--store", store}, "--store is for root only"},
		{[]string{"session", "list", "--store=" + store}, "--store is for root only"},
		{[]string{"shell", "--config", cfg, "hostjail"}, "--config is for root only"},
		{[]string{"jail", "list", "--config", cfg}, "--config is for root only"},
		{[]string{"--store", store, "--config", cfg, "run", "hostjail", "--", "id"}, "for root only"},
		{[]string{"run", "hostjail", "--store", store, "--config", cfg, "--", "id"}, "--config, --store are for root only"},
		// Flag values that look like commands: cobra decides what runs.
		{[]string{"--name", "run", "image", "import", filepath.Join(dir, "evil.tar.zst"), "--name", "x", "--store", store}, "'image import' needs root"},
		{[]string{"image", "import", filepath.Join(dir, "evil.tar.zst"), "--name", "run"}, "'image import' needs root"},
		{[]string{"-q", "image", "rm", "x"}, "'image rm' needs root"},
		{[]string{"--quiet=true", "image", "gc"}, "'image gc' needs root"},
		{[]string{"bootstrap", "bookworm", "--customize-hook", "touch /tmp/x"}, "'bootstrap' needs root"},
		{[]string{"config", "check"}, "'config check' needs root"},
		{[]string{"completion", "bash"}, "'completion bash' needs root"},
		{[]string{"__complete", "image", "rm", ""}, "'__complete' needs root"},
		// The schroot front end's own route, with jailmgr's globals first.
		{[]string{"--config", cfg, "schroot", "-c", "hostjail", "-u", "root", "--", "id"}, "--config is for root only"},
		{[]string{"--store=" + store, "schroot", "-l"}, "--store is for root only"},
		{[]string{"-q", "--config=" + cfg, "schroot", "-l"}, "--config is for root only"},
	} {
		code, out := asSetuidUser(t, c.args...)
		if code == 0 || !strings.Contains(out, c.want) {
			t.Errorf("setuid jailmgr %q: exit %d, %q; want a refusal with %q", c.args, code, out, c.want)
		}
	}
	if _, err := os.Stat(store); !os.IsNotExist(err) {
		t.Errorf("a refused command line made the store: %v", err)
	}
}

// TestSetuidPolicyOpenCommands: what a user of jails needs still parses
// and reaches its own checks (here, that the jail does not exist).
func TestSetuidPolicyOpenCommands(t *testing.T) {
	t.Setenv("JAILMGR_RUN_DIR", t.TempDir())
	for _, args := range [][]string{
		{"session", "list", "--json"},
		{"-q", "session", "list"},
		{"help", "run"},
		{"run", "--help"},
	} {
		if code, out := asSetuidUser(t, args...); code != 0 {
			t.Errorf("setuid jailmgr %q: exit %d, %q; want it allowed", args, code, out)
		}
	}
}

// TestEveryCommandIsJudged walks the command tree: the root's hook is the
// only persistent pre-run (cobra runs the nearest one only, so a command
// with its own would escape the policy), and every listed command exists.
func TestEveryCommandIsJudged(t *testing.T) {
	a := newApp(nil, nil, nil)
	root := a.rootCmd()
	seen := map[string]bool{}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		seen[c.CommandPath()] = true
		if c != root && (c.PersistentPreRun != nil || c.PersistentPreRunE != nil) {
			t.Errorf("%s has a persistent pre-run hook of its own: the setuid policy would not run for it", c.CommandPath())
		}
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(root)
	for p, flags := range setuidAllowed {
		if p == "jailmgr help" {
			continue
		}
		if !seen[p] {
			t.Errorf("setuidAllowed lists %q, which is no command", p)
			continue
		}
		c, _, err := root.Find(strings.Fields(p)[1:])
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range flags {
			if c.Flags().Lookup(f) == nil && c.InheritedFlags().Lookup(f) == nil {
				t.Errorf("setuidAllowed lists --%s for %q, which has no such flag", f, p)
			}
		}
	}
}

func TestPrintable(t *testing.T) {
	for in, want := range map[string]string{
		"plain ‘quoted’ text\n\tindented": "plain ‘quoted’ text\n\tindented",
		"\x1b[2Jcleared":                  `\x1b[2Jcleared`,
		"bell\a and del\x7f":              `bell\x07 and del\x7f`,
		"bad \xff utf-8":                  `bad \xff utf-8`,
		"right\u202eto left":              `right\u202eto left`,
		"cr\rover":                        `cr\x0dover`,
	} {
		if got := printable(in); got != want {
			t.Errorf("printable(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestSetuidSeesOnlyItsJails: through a setuid jailmgr, a user sees the
// jails and chroots they may use, nothing of the rest of root's
// configuration (which root may keep unreadable): not in jail list/show,
// not in schroot's --list, --info, --config or --location, not in a
// refusal's wording.
func TestSetuidSeesOnlyItsJails(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "jailmgr.conf")
	os.WriteFile(cfg, []byte("[open]\ndirectory = /\nusers = nobody\n\n[secretj]\ndirectory = /srv/secret-place\ndescription = the secret one\nusers = root, alice\n"), 0o600)
	saved := conf.DefaultPath
	conf.DefaultPath = cfg
	defer func() { conf.DefaultPath = saved }()
	t.Setenv("JAILMGR_SCHROOT_DIR", filepath.Join(dir, "schroot"))
	t.Setenv("JAILMGR_RUN_DIR", filepath.Join(dir, "run"))
	for _, args := range [][]string{
		{"jail", "list"},
		{"jail", "list", "--json"},
		{"jail", "show", "secretj"},
		{"schroot", "-l"},
		{"schroot", "-l", "--all"},
		{"schroot", "-i", "-c", "secretj"},
		{"schroot", "--config", "-c", "secretj"},
		{"schroot", "--location", "-c", "secretj"},
		{"schroot", "--config", "--all-chroots"},
		{"run", "secretj", "--", "true"},
	} {
		_, out := asSetuidUser(t, args...)
		for _, secret := range []string{"secret-place", "the secret one", "alice"} {
			if strings.Contains(out, secret) {
				t.Errorf("setuid jailmgr %q shows %q: %q", args, secret, out)
			}
		}
	}
	if code, out := asSetuidUser(t, "schroot", "-l"); code != 0 || !strings.Contains(out, "open") {
		t.Errorf("schroot -l does not list the user's own jail: exit %d, %q", code, out)
	}
}
