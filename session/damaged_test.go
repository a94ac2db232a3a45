package session

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestDamagedStateStopsNothingElse: one garbled state.json (or one that
// names another session) used to make List, and so 'session list', 'recover'
// and the schroot front end, fail for every session. Now it is reported by
// name beside the others, and removed by EndDamaged or root's Recover.
func TestDamagedStateStopsNothingElse(t *testing.T) {
	runDir := t.TempDir()
	good := &State{ID: "good-1", Jail: "j", Type: "ephemeral", Cgroup: "jailmgr/good-1-test", Dir: filepath.Join(runDir, "good-1")}
	os.Mkdir(good.Dir, 0o700)
	os.WriteFile(filepath.Join(good.Dir, "lock"), nil, 0o600)
	if err := writeState(good); err != nil {
		t.Fatal(err)
	}
	for id, data := range map[string]string{"bad-1": "{garbage\x1b[2J", "evil-1": `{"id": "good-1"}`} {
		os.Mkdir(filepath.Join(runDir, id), 0o700)
		os.WriteFile(filepath.Join(runDir, id, "state.json"), []byte(data), 0o600)
	}
	states, err := List(runDir)
	if len(states) != 1 || states[0].ID != "good-1" || !OnlyDamaged(err) {
		t.Fatalf("List = %v, %v; want good-1 and two damaged", states, err)
	}
	if d, _ := damagedIn(err); len(d) != 2 {
		t.Errorf("damaged = %v, want bad-1 and evil-1", d)
	}
	// A user's recover touches their own sessions only, damaged ones not.
	ids, err := Recover(runDir, func(st *State) bool { return true })
	if err != nil || !slices.Equal(ids, []string{"good-1"}) {
		t.Errorf("Recover(mine) = %v, %v; want good-1 (its init is gone)", ids, err)
	}
	if _, err := os.Stat(filepath.Join(runDir, "bad-1")); err != nil {
		t.Errorf("a user's recover removed a damaged session: %v", err)
	}
	if err := EndDamaged(runDir, "bad-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(runDir, "bad-1")); !os.IsNotExist(err) {
		t.Errorf("EndDamaged left the folder: %v", err)
	}
	if err := EndDamaged(runDir, "../x"); err == nil {
		t.Error("EndDamaged took a path for an id")
	}
	ids, err = Recover(runDir, nil)
	if err != nil || !slices.Equal(ids, []string{"evil-1"}) {
		t.Errorf("Recover(all) = %v, %v; want evil-1", ids, err)
	}
	if ents, _ := os.ReadDir(runDir); len(ents) != 0 {
		t.Errorf("left in the run dir: %v", ents)
	}
}
