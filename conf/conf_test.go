package conf

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func write(t *testing.T, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLoadGlobal(t *testing.T) {
	dir := t.TempDir()
	main := filepath.Join(dir, "jailmgr.conf")
	write(t, main, "[jailmgr]\nstore = /srv/jails\nmirror.debian = http://mirror.invalid/debian\n\n[build]\nimage = bookworm\n")
	write(t, filepath.Join(dir, "jailmgr.d", "ubuntu.conf"), "[jailmgr]\nmirror.ubuntu = http://mirror.invalid/ubuntu\n")
	c, err := Load(main)
	if err != nil {
		t.Fatal(err)
	}
	if c.Store != "/srv/jails" || c.Mirrors["debian"] == "" || c.Mirrors["ubuntu"] == "" {
		t.Errorf("config = %+v", c)
	}
	if s := c.Sections["build"]; s == nil || s.Line != 5 || len(s.Keys) != 1 || s.Keys[0].Line != 6 {
		t.Errorf("section build = %+v", c.Sections["build"])
	}
}

func TestLoadMissingIsEmpty(t *testing.T) {
	c, err := Load(filepath.Join(t.TempDir(), "none.conf"))
	if err != nil || len(c.Files) != 0 {
		t.Errorf("Load(missing) = %+v, %v; want empty config", c, err)
	}
}

func TestLoadErrorsNameFileAndLine(t *testing.T) {
	dir := t.TempDir()
	main := filepath.Join(dir, "jailmgr.conf")
	write(t, main, "[jailmgr]\nmirror.debain = http://x.invalid/\nstore = relative\n[a]\nx = 1\n[a]\n")
	_, err := Load(main)
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("err = %v, want ErrInvalid", err)
	}
	for _, want := range []string{main + ":2: mirror.debain: unknown key", main + ":3: store:", main + `:6: jail "a" is defined twice`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

// TestLongLinesAreRead: a line over bufio.Scanner's 64 KiB limit used to
// end the scan silently, so that what followed it — here a second jail and
// an error in it — was never read, and 'config check' said ok.
func TestLongLinesAreRead(t *testing.T) {
	dir := t.TempDir()
	main := filepath.Join(dir, "jailmgr.conf")
	long := strings.Repeat("x", 200<<10)
	write(t, main, "[a]\nimage = bookworm\ndescription = "+long+"\n[b]\nimage = bookworm\nno-such-key = 1\n")
	c, err := Load(main)
	if err != nil {
		t.Fatal(err)
	}
	if s := c.Sections["a"]; s == nil || len(s.Keys) != 2 || len(s.Keys[1].Value) != len(long) {
		t.Fatalf("section a = %+v", s)
	}
	_, err = c.Jails(nil)
	if err == nil || !strings.Contains(err.Error(), main+":6: no-such-key") {
		t.Errorf("Jails: %v; want the unknown key after the long line, at line 6", err)
	}
	// schroot's key files likewise.
	groups, err := parseKeyfile("schroot.conf", []byte("[c]\ndescription="+long+"\ntype=plain\n"))
	if err != nil || len(groups) != 1 || len(groups[0].keys) != 2 {
		t.Errorf("parseKeyfile with a long line: %v, %+v", err, groups)
	}
}
