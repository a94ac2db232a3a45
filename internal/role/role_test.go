package role

import "testing"

func TestRegisterAndIs(t *testing.T) {
	Register(Prefix+"test-role", func([]string) int { return 0 })
	if !Is([]string{"jailmgr", Prefix + "test-role"}) {
		t.Error("a registered role is not found")
	}
	for _, args := range [][]string{{"jailmgr"}, {"jailmgr", "run"}, {"jailmgr", Prefix + "nope"}, {"jailmgr", "--", Prefix + "test-role"}} {
		if Is(args) {
			t.Errorf("Is(%q) = true", args)
		}
	}
	if elevated() {
		t.Error("a test process is not a setuid start")
	}
}

func TestRegisterRefusesOtherNames(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("Register took a name without the prefix")
		}
	}()
	Register("run", func([]string) int { return 0 })
}
