package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestGarbageConfigIsNotEchoedRaw: a config of binary garbage used to be
// echoed to the terminal byte for byte in the error (escape sequences
// included); every message now shows such bytes escaped.
func TestGarbageConfigIsNotEchoedRaw(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "jailmgr.conf")
	os.WriteFile(cfg, []byte("[x\x1b]2;pwned\a]\n\x1b[2J\x00\xff\xfe = \x9b1m\n"), 0o644)
	code, out, errb := jailmgr(t, "--store", filepath.Join(dir, "store"), "--config", cfg, "config", "check")
	if code == 0 {
		t.Fatalf("config check of garbage: exit 0, %q", out)
	}
	for _, b := range []byte(errb) {
		if (b < 0x20 && b != '\n' && b != '\t') || b == 0x7f {
			t.Fatalf("error output holds raw byte %#x: %q", b, errb)
		}
	}
	if strings.Contains(errb, "\xff") || strings.Contains(errb, "\u009b") {
		t.Errorf("error output holds invalid UTF-8 or a C1 control: %q", errb)
	}
	if !strings.Contains(errb, cfg) {
		t.Errorf("error does not name the file: %q", errb)
	}
}

// TestSessionListSurvivesDamagedState: one damaged state.json no longer
// stops 'session list' (it is named on stderr), and root's 'session end'
// removes it.
func TestSessionListSurvivesDamagedState(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("session end of a damaged session is root's")
	}
	runDir := t.TempDir()
	t.Setenv("JAILMGR_RUN_DIR", runDir)
	os.Mkdir(filepath.Join(runDir, "broken-1"), 0o700)
	os.WriteFile(filepath.Join(runDir, "broken-1", "state.json"), []byte("{"), 0o600)
	code, out, errb := jailmgr(t, "session", "list")
	if code != 0 || !strings.HasPrefix(out, "ID") || !strings.Contains(errb, "broken-1") {
		t.Errorf("session list with a damaged state: exit %d, %q, %q", code, out, errb)
	}
	if code, _, errb := jailmgr(t, "session", "end", "broken-1"); code != 0 {
		t.Errorf("session end of a damaged session: exit %d, %q", code, errb)
	}
	if _, err := os.Stat(filepath.Join(runDir, "broken-1")); !os.IsNotExist(err) {
		t.Errorf("session end left the damaged session: %v", err)
	}
}
