package conf

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadSecurityMirror(t *testing.T) {
	dir := t.TempDir()
	main := filepath.Join(dir, "jailmgr.conf")
	write(t, main, "[jailmgr]\nmirror.debian = http://mirror.invalid/debian\nsecurity-mirror.debian = http://security.invalid/debian-security\nsecurity-mirror.ubuntu = http://mirror.invalid/ubuntu\n")
	c, err := Load(main)
	if err != nil {
		t.Fatal(err)
	}
	if c.SecurityMirrors["debian"] != "http://security.invalid/debian-security" || c.SecurityMirrors["ubuntu"] != "http://mirror.invalid/ubuntu" || c.Mirrors["debian"] != "http://mirror.invalid/debian" {
		t.Errorf("mirrors %v, security mirrors %v", c.Mirrors, c.SecurityMirrors)
	}
	if _, ok := c.Mirrors["security"]; ok {
		t.Errorf("a security-mirror key landed among the mirrors: %v", c.Mirrors)
	}

	write(t, main, "[jailmgr]\nsecurity-mirror.debian = not a url\nsecurity-mirror.arch = http://x.invalid/\n")
	_, err = Load(main)
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("err = %v, want ErrInvalid", err)
	}
	for _, want := range []string{main + ":2: security-mirror.debian:", main + ":3: security-mirror.arch: unknown key"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}
