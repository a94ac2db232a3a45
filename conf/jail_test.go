package conf

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func loadJails(t *testing.T, text string, exists func(string) error) (map[string]*Jail, string, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "jailmgr.conf")
	write(t, path, text)
	c, err := Load(path)
	if err != nil {
		return nil, path, err
	}
	j, err := c.Jails(exists)
	return j, path, err
}

func TestJailFull(t *testing.T) {
	text := `[focal-build]
description = Focal build chroot
image = focal:2
type = persistent
users = alice, bob
groups = sbuild
root-users = alice
root-groups = admin
aliases = focal, default
mounts = proc, dev, home
bind = /srv/src:/src:ro
bind = /var/cache/ccache:/ccache
hostname = builder
network = none
memory = 2G
cpus = 1.5
pids = 512
seccomp = default
capabilities = chown, CAP_SETUID
environment = preserve
shell = /bin/bash
idle-timeout = 30m
max-lifetime = 7200
`
	jails, _, err := loadJails(t, text, func(string) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	j := jails["focal-build"]
	if j == nil {
		t.Fatal("jail missing")
	}
	want := &Jail{Name: "focal-build", Description: "Focal build chroot", Image: "focal:2", Type: "persistent",
		Users: []string{"alice", "bob"}, Groups: []string{"sbuild"}, RootUsers: []string{"alice"}, RootGroups: []string{"admin"},
		Aliases: []string{"focal", "default"}, Mounts: []string{"proc", "dev", "home"},
		Binds:    []Bind{{"/srv/src", "/src", true}, {"/var/cache/ccache", "/ccache", false}},
		Hostname: "builder", Network: "none", Memory: 2 << 30, CPUs: 1.5, Pids: 512, Seccomp: "default",
		Capabilities: []string{"CAP_CHOWN", "CAP_SETUID"}, Environment: "preserve", Shell: "/bin/bash",
		IdleTimeout: 30 * time.Minute, MaxLifetime: 2 * time.Hour, File: j.File, Line: 1}
	if fmt.Sprintf("%+v", j) != fmt.Sprintf("%+v", want) {
		t.Errorf("jail =\n%+v\nwant\n%+v", j, want)
	}
	if got, ok := Lookup(jails, "default"); !ok || got != j {
		t.Errorf("Lookup by alias failed")
	}
}

func TestJailDefaults(t *testing.T) {
	jails, _, err := loadJails(t, "[a]\nimage = bookworm\n[b]\ndirectory = /srv/chroot/b\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	if a := jails["a"]; a.Type != "ephemeral" || a.Network != "host" || a.Seccomp != "default" || len(a.Mounts) != 5 || a.Environment != "clean" {
		t.Errorf("image jail defaults = %+v", a)
	}
	if b := jails["b"]; b.Type != "persistent" {
		t.Errorf("directory jail type = %q, want persistent", b.Type)
	}
}

func TestJailErrors(t *testing.T) {
	text := `[good]
image = bookworm
aliases = shared

[bad]
image = nosuch
memory = lots
cpus = -1
pids = 0
network = bridge
type = temporary
mounts = proc, floppy
bind = relative:/x
seccomp = strict
capabilities = CAP_FLY
idle-timeout = soon
colour = blue
hostname = -x
aliases = shared
image = twice

[empty]
description = nothing to run
`
	exists := func(ref string) error {
		if ref == "nosuch" {
			return errors.New("no image nosuch (see 'jailmgr image list')")
		}
		return nil
	}
	_, path, err := loadJails(t, text, exists)
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("err = %v, want ErrInvalid", err)
	}
	for _, want := range []string{
		":6: image: no image nosuch", ":7: memory: ", ":8: cpus: ", ":9: pids: ", ":10: network: ", ":11: type: ",
		":12: mounts: \"floppy\"", ":13: bind: ", ":14: seccomp: ", ":15: capabilities: ", ":16: idle-timeout: ",
		":17: colour: unknown key", ":18: hostname: ", ":19: aliases: \"shared\" is already", ":20: image: set twice",
		`:22: jail "empty" needs image = REF or directory = PATH`,
	} {
		if !strings.Contains(err.Error(), path+want) {
			t.Errorf("errors lack %q:\n%v", want, err)
		}
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"512M": 512 << 20, "2G": 2 << 30, "1.5G": 3 << 29, "1048576": 1 << 20, "4096K": 4 << 20} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "x", "-1G", "10", "1Q"} {
		if _, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) accepted", in)
		}
	}
}
