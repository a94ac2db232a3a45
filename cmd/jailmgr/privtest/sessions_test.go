package privtest

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// euidZero is the evidence of a setuid-root program that ran with its bit.
func euidZero(r result) string {
	if strings.Contains(r.stdout, "euid=0(") || strings.HasPrefix(r.stdout, "uid=0(") {
		return "it ran with euid 0 on the host: " + firstLine(r.stdout)
	}
	return ""
}

// testSetuidInJailRoots is class 4: a jail's files keep no setuid power on
// the host. Root inside (jmpriv1, a root-user of rootj) makes setuid-root
// copies of id and sh in its session; run from the host — through the
// session's root that 'session info' and 'schroot --location' give, and
// through the store's copy (the overlay's upper dir) — by jmpriv1 or
// jmpriv2, they must not run as root. An image's own setuid-root file
// (suidimg, imported by root) likewise. And jmpriv2 may not read or list
// jmpriv1's session root nor the store.
func testSetuidInJailRoots(t *testing.T, s *suite) {
	u1, u2 := s.u1, s.u2
	id := s.mustBegin(t, u1, "rootj")
	r := s.run(call{as: u1, args: []string{"session", "run", id, "-u", "root", "--", s.tool("sh"), "-c",
		fmt.Sprintf("%[1]s %[3]s /jmpriv-suid-id && %[2]s 4755 /jmpriv-suid-id && %[1]s %[4]s /jmpriv-suid-sh && %[2]s 4755 /jmpriv-suid-sh",
			s.tool("cp"), s.tool("chmod"), s.tool("id"), s.tool("sh"))}})
	if r.code != 0 {
		t.Logf("root inside %s could not make setuid-root files (%s): the runs below have nothing to run", id, r)
	}
	root := s.sessionRoot(u1, id)
	loc := firstLine(s.run(call{as: u1, args: []string{"schroot", "--location", "-c", "session:" + id}}).stdout)
	upper, lower := overlayDirs(root)
	if root == "" {
		t.Errorf("precondition: no root for session %s in 'session info'", id)
	}
	var bases []string
	var labels []string
	for _, b := range []struct{ label, path string }{
		{"the session's root from 'session info'", root},
		{"the session's root from 'schroot --location'", loc},
		{"the session's overlay upper dir in the store", upper},
	} {
		if b.path != "" && !slices.Contains(bases, b.path) {
			bases, labels = append(bases, b.path), append(labels, b.label)
		}
	}
	for i, base := range bases {
		for _, who := range []*account{u1, u2} {
			s.attack(t, fmt.Sprintf("%s runs %s's setuid-root id through %s", who.name, u1.name, labels[i]),
				call{as: who, prog: filepath.Join(base, "jmpriv-suid-id")}, euidZero)
			s.attack(t, fmt.Sprintf("%s runs %s's setuid-root sh -p through %s", who.name, u1.name, labels[i]),
				call{as: who, prog: filepath.Join(base, "jmpriv-suid-sh"), args: []string{"-p", "-c", s.tool("id")}}, euidZero)
		}
	}
	for _, who := range []*account{u1, u2} {
		s.attack(t, who.name+" runs the setuid-root file of image suidimg through the store",
			call{as: who, prog: filepath.Join(s.imageRoot("suidimg", 1), "jmpriv-suid-id")}, euidZero)
	}
	// jmpriv2 reading what is jmpriv1's or the store's.
	listed := map[string]bool{}
	for _, p := range []struct{ label, path string }{
		{"jmpriv1's session root", root},
		{"jmpriv1's session root (schroot --location)", loc},
		{"jmpriv1's session's upper dir", upper},
		{"the session's image root", lower},
		{"the store", s.store},
		{"the store's images", filepath.Join(s.store, "images")},
		{"an image's root in the store", s.imageRoot("privimg", 1)},
	} {
		if p.path == "" || listed[p.path] {
			continue
		}
		listed[p.path] = true
		s.attack(t, u2.name+" lists "+p.label, call{as: u2, prog: s.tool("ls"), args: []string{"-a", p.path}}, func(r result) string {
			if r.code == 0 {
				return fmt.Sprintf("%s listed %s (%s): %s", u2.name, p.label, p.path, strings.Join(strings.Fields(r.stdout), " "))
			}
			if !strings.Contains(r.stderr, "Permission denied") {
				t.Logf("%s listing %s failed otherwise than with EACCES: %s", u2.name, p.path, r)
			}
			return ""
		})
	}
	if root != "" {
		s.attack(t, u2.name+" reads a file in jmpriv1's session root", call{as: u2, prog: s.tool("cat"), args: []string{filepath.Join(root, "etc", "passwd")}}, func(r result) string {
			if r.code == 0 {
				return u2.name + " read " + filepath.Join(root, "etc", "passwd")
			}
			return ""
		})
	}
	s.run(call{as: u1, args: []string{"session", "end", id}})
}

// testInheritedDescriptors is class 5: a descriptor the caller leaves
// open (here 7, the host's /, as 'exec 7</' does) must not reach a jailed
// command, whether given to run, to session begin (whose init would pass
// it to every command), to session run, or to the schroot front end.
func testInheritedDescriptors(t *testing.T, s *suite) {
	u := s.u1
	hostRoot, err := os.Open("/")
	if err != nil {
		t.Fatal(err)
	}
	defer hostRoot.Close()
	fd7 := []*os.File{nil, nil, nil, nil, hostRoot}
	ls := []string{s.tool("ls"), "-a", "/proc/self/fd/7/"}
	sawHost := func(r result) string {
		for _, l := range strings.Split(r.stdout, "\n") {
			if l = strings.TrimSpace(l); slices.Contains(s.hostOnly, l) {
				return fmt.Sprintf("descriptor 7, the host's /, reached the jailed command: it listed %q there, which only the host's root has (%s)",
					l, strings.Join(strings.Fields(r.stdout), " "))
			}
		}
		return ""
	}
	for _, sp := range []struct {
		name string
		args []string
	}{
		{"run JAIL -- ls /proc/self/fd/7/", append([]string{"run", "eph", "--"}, ls...)},
		{"run -u root JAIL -- ls /proc/self/fd/7/", append([]string{"run", "rootj", "-u", "root", "--"}, ls...)},
		{"run DIRJAIL -- ls /proc/self/fd/7/", append([]string{"run", "dirj", "--"}, ls...)},
		{"schroot -c JAIL -- ls /proc/self/fd/7/", append([]string{"schroot", "-c", "eph", "-d", "/", "--"}, ls...)},
	} {
		s.attack(t, sp.name+" with descriptor 7 open on /", call{as: u, args: sp.args, files: fd7}, sawHost)
	}
	// Given to session begin: the init, and so every command, would hold it.
	if id, r := s.begin(u, "eph", fd7...); id == "" {
		t.Errorf("precondition: session begin with descriptor 7 open: %s", r)
	} else {
		s.attack(t, "session begin with descriptor 7 open on /, then session run -- ls /proc/self/fd/7/",
			call{as: u, args: append([]string{"session", "run", id, "--"}, ls...)}, sawHost)
	}
	id := s.mustBegin(t, u, "eph")
	s.attack(t, "session run ID -- ls /proc/self/fd/7/ with descriptor 7 open on /",
		call{as: u, args: append([]string{"session", "run", id, "--"}, ls...), files: fd7}, sawHost)
	// schroot's sessions: begun with it, or run with it.
	r := s.run(call{as: u, args: []string{"schroot", "-b", "-c", "eph"}, files: fd7})
	if sid := firstLine(r.stdout); r.code != 0 || sid == "" {
		t.Errorf("precondition: schroot -b -c eph: %s", r)
	} else {
		s.attack(t, "schroot -b with descriptor 7 open on /, then schroot -r -c ID -- ls /proc/self/fd/7/",
			call{as: u, args: append([]string{"schroot", "-r", "-c", sid, "-d", "/", "--"}, ls...)}, sawHost)
		s.attack(t, "schroot -r -c ID -- ls /proc/self/fd/7/ with descriptor 7 open on /",
			call{as: u, args: append([]string{"schroot", "-r", "-c", sid, "-d", "/", "--"}, ls...), files: fd7}, sawHost)
	}
}

// testSharedPersistentJail is class 6: two users' sessions of one
// persistent jail at once. jmpriv1, root in pers, replaces /usr/bin/id in
// its session; a second session of pers by jmpriv2 must then be refused,
// or be apart from the first: jmpriv2's id must be id.
func testSharedPersistentJail(t *testing.T, s *suite) {
	u1, u2 := s.u1, s.u2
	first := s.mustBegin(t, u1, "pers")
	if r := s.run(call{as: u1, args: []string{"session", "run", first, "-u", "root", "--", s.tool("cp"), s.tool("touch"), s.tool("id")}}); r.code != 0 {
		t.Fatalf("precondition: %s, root in pers, could not replace /usr/bin/id in its session: %s", u1.name, r)
	}
	c := call{as: u2, args: []string{"session", "begin", "pers"}}
	r := s.run(c)
	second := strings.TrimSpace(r.stdout)
	if r.code != 0 || second == "" {
		s.judge(t, "a second session of the persistent jail while the first is open", c, r, "")
		return
	}
	c = call{as: u2, args: []string{"session", "run", second, "--", s.tool("id")}}
	r = s.run(c)
	evidence := ""
	if !strings.Contains(r.stdout, fmt.Sprintf("uid=%d(", u2.uid)) {
		evidence = fmt.Sprintf("%s's session %s of pers shares the upper dir of %s's open session %s: its /usr/bin/id ran what %s put there as root",
			u2.name, second, u1.name, first, u1.name)
	}
	s.judge(t, "a second session of the persistent jail while the first is open, then its /usr/bin/id", c, r, evidence)
}

// testOtherUsersSessions is class 7: jmpriv2 may not see, use, end or
// recover jmpriv1's sessions, by any command that takes or lists ids.
func testOtherUsersSessions(t *testing.T, s *suite) {
	u1, u2 := s.u1, s.u2
	live := s.mustBegin(t, u1, "eph")
	liveRoot := s.sessionRoot(u1, live)
	dead := s.mustBegin(t, u1, "eph")
	if ok, err := s.killSession(dead); err != nil || !ok {
		t.Logf("killing %s's init left no state (%v): using a forged dead session of %s instead", dead, err, u1.name)
		dead = s.token + "-dead"
		if err := s.forgeDeadSession(live, dead); err != nil {
			t.Fatalf("precondition: %v", err)
		}
	}
	deadDir := filepath.Join(s.runDir, dead)
	// The owner sees and uses them: hiding every session from everyone
	// would pass what follows for nothing.
	if r := s.run(call{as: u1, args: []string{"session", "list"}}); !strings.Contains(r.stdout, live) {
		t.Errorf("control: %s's own 'session list' does not show its session %s: %s", u1.name, live, r)
	}
	if !s.usable(u1, live) {
		t.Errorf("control: %s cannot run a command in its own session %s", u1.name, live)
	}
	shows := func(r result) string {
		for _, id := range []string{live, dead} {
			if strings.Contains(r.stdout, id) {
				return fmt.Sprintf("it showed %s's session %s", u1.name, id)
			}
		}
		if liveRoot != "" && strings.Contains(r.out(), liveRoot) {
			return fmt.Sprintf("it showed where %s's session root is (%s)", u1.name, liveRoot)
		}
		return ""
	}
	ids := strings.NewReplacer("LIVE", live, "DEAD", dead)
	fill := func(tmpl []string) []string {
		args := make([]string, len(tmpl))
		for i, a := range tmpl {
			args[i] = ids.Replace(a)
		}
		return args
	}
	for _, tmpl := range [][]string{
		{"session", "list"},
		{"session", "list", "--json"},
		{"session", "info", "LIVE"},
		{"session", "info", "DEAD"},
		{"schroot", "--list", "--all-sessions"},
		{"schroot", "--info", "-c", "session:LIVE"},
		{"schroot", "--location", "-c", "session:LIVE"},
	} {
		s.attack(t, spell(tmpl)+" (LIVE, DEAD: "+u1.name+"'s sessions)", call{as: u2, args: fill(tmpl)}, shows)
	}
	ran := func(r result) string {
		if strings.Contains(r.stdout, "uid=") {
			return fmt.Sprintf("%s ran a command in %s's session: %s", u2.name, u1.name, firstLine(r.stdout))
		}
		return ""
	}
	for _, tmpl := range [][]string{
		{"session", "run", "LIVE", "--", s.tool("id")},
		{"session", "run", "LIVE", "-u", "root", "--", s.tool("id")},
		{"schroot", "-r", "-c", "LIVE", "-d", "/", "--", s.tool("id")},
		{"schroot", "-r", "-c", "session:LIVE", "-u", "root", "-d", "/", "--", s.tool("id")},
	} {
		s.attack(t, spell(tmpl)+" (LIVE: "+u1.name+"'s session)", call{as: u2, args: fill(tmpl)}, ran)
	}
	ended := func(r result) string {
		if !s.usable(u1, live) {
			return fmt.Sprintf("%s's live session %s is gone", u1.name, live)
		}
		return ""
	}
	for _, tmpl := range [][]string{
		{"session", "end", "LIVE"},
		{"schroot", "-e", "-c", "LIVE"},
		{"schroot", "-e", "-c", "session:LIVE"},
	} {
		s.attack(t, spell(tmpl)+" (LIVE: "+u1.name+"'s session)", call{as: u2, args: fill(tmpl)}, ended)
	}
	s.attack(t, "session recover (with "+u1.name+"'s sessions, one live, one dead)", call{as: u2, args: []string{"session", "recover"}}, func(r result) string {
		var ev []string
		if !exists(filepath.Join(deadDir, "state.json")) {
			ev = append(ev, fmt.Sprintf("%s's recover removed %s's dead session %s", u2.name, u1.name, dead))
		}
		if strings.Contains(r.stdout, dead) {
			ev = append(ev, "it reported "+dead)
		}
		if e := ended(r); e != "" {
			ev = append(ev, e)
		}
		return strings.Join(ev, "; ")
	})
	s.attack(t, "schroot --recover-session -c DEAD (DEAD: "+u1.name+"'s dead session)", call{as: u2, args: []string{"schroot", "--recover-session", "-c", dead}}, func(r result) string {
		if !exists(filepath.Join(deadDir, "state.json")) {
			return fmt.Sprintf("%s's schroot --recover-session removed %s's dead session %s", u2.name, u1.name, dead)
		}
		return ""
	})
	if r := s.root("session", "recover"); r.code != 0 {
		t.Logf("root's session recover: %s", r)
	}
}
