package privtest

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// testRootOnlyFlags is class 1: --config, --store and the JAILMGR_*
// variables are root's. A user passing them — before or after the
// command, before or after the jail, with or without '=', on every command
// a user may run, or in the environment — must not get a root process to
// use their configuration, their store, their run or schroot folder, or
// read a file of root's as a configuration.
func testRootOnlyFlags(t *testing.T, s *suite) {
	u := s.u1
	id := s.tool("id")
	// A jail of the user's own making: the host's / as its root, the user
	// root in it.
	hostConf := s.userFile(t, u, "mine.conf", []byte(fmt.Sprintf("[hostjail]\ndirectory = /\nusers = %[1]s\nroot-users = %[1]s\nmounts = tmp\n", u.name)), 0o644)
	rootOnHost := func(r result) string {
		if strings.Contains(r.out(), "uid=0(root)") {
			return "a command ran as root in the caller's own jail, whose root is the host's /: " + firstLine(r.stdout)
		}
		return ""
	}
	for _, sp := range []struct {
		name string
		args []string
		env  []string
	}{
		{"run --config FILE JAIL -u root", []string{"run", "--config", hostConf, "hostjail", "-u", "root", "--", id}, nil},
		{"run JAIL --config=FILE -u root", []string{"run", "hostjail", "--config=" + hostConf, "-u", "root", "--", id}, nil},
		{"run -u root --config FILE JAIL", []string{"run", "-u", "root", "--config", hostConf, "hostjail", "--", id}, nil},
		{"--config FILE run JAIL -u root", []string{"--config", hostConf, "run", "hostjail", "-u", "root", "--", id}, nil},
		{"-q --config=FILE run JAIL -u root", []string{"-q", "--config=" + hostConf, "run", "hostjail", "-u", "root", "--", id}, nil},
		{"--config FILE schroot -c JAIL -u root", []string{"--config", hostConf, "schroot", "-c", "hostjail", "-u", "root", "-d", "/", "--", id}, nil},
		{"JAILMGR_CONFIG=FILE schroot -c JAIL -u root", []string{"schroot", "-c", "hostjail", "-u", "root", "-d", "/", "--", id}, []string{"JAILMGR_CONFIG=" + hostConf}},
		{"JAILMGR_CONFIG=FILE run JAIL -u root", []string{"run", "hostjail", "-u", "root", "--", id}, []string{"JAILMGR_CONFIG=" + hostConf}},
	} {
		s.attack(t, sp.name, call{as: u, args: sp.args, env: sp.env}, rootOnHost)
	}
	for _, sp := range []struct {
		name string
		args []string
	}{
		{"session begin --config FILE JAIL -u root", []string{"session", "begin", "--config", hostConf, "hostjail", "-u", "root"}},
		{"session begin JAIL --config=FILE", []string{"session", "begin", "hostjail", "--config=" + hostConf}},
	} {
		c := call{as: u, args: sp.args}
		r := s.run(c)
		evidence := ""
		if sid := strings.TrimSpace(r.stdout); r.code == 0 && sid != "" {
			evidence = "session begin opened session " + sid + " of the caller's own jail (the host's / as its root)"
			if r2 := s.run(call{as: u, args: []string{"session", "run", sid, "-u", "root", "--", id}}); strings.Contains(r2.stdout, "uid=0(root)") {
				evidence += ", and the caller is root in it: " + firstLine(r2.stdout)
			}
		}
		s.judge(t, sp.name, c, r, evidence)
	}
	for _, sp := range []struct {
		name string
		args []string
	}{
		{"shell --config FILE JAIL -u root", []string{"shell", "--config", hostConf, "hostjail", "-u", "root"}},
		{"shell JAIL --config=FILE -u root", []string{"shell", "hostjail", "--config=" + hostConf, "-u", "root"}},
	} {
		c := call{as: u, args: sp.args, timeout: 20 * time.Second}
		r := s.runPTY(c, id+"; exit\n")
		s.judge(t, sp.name, c, r, rootOnHost(r))
	}

	// Root's files read as a configuration: one only root may read, and
	// /etc/shadow.
	readSecret := func(r result) string {
		if strings.Contains(r.out(), s.secretJail) {
			return "jailmgr read root's 0600 " + s.secret + " as the caller's configuration and showed the jail it defines"
		}
		if strings.Contains(r.out(), "/etc/shadow:1") {
			return "jailmgr parsed /etc/shadow for the caller and reported on its lines: " + firstLine(r.stderr)
		}
		return ""
	}
	for _, sp := range []struct {
		name string
		args []string
	}{
		{"jail list --config SECRET", []string{"jail", "list", "--config", s.secret}},
		{"jail list --json --config=SECRET", []string{"jail", "list", "--json", "--config=" + s.secret}},
		{"jail show --config SECRET NAME", []string{"jail", "show", "--config", s.secret, s.secretJail}},
		{"doctor --config=SECRET", []string{"doctor", "--config=" + s.secret}},
		{"jail list --config /etc/shadow", []string{"jail", "list", "--config", "/etc/shadow"}},
		{"session list --config /etc/shadow", []string{"session", "list", "--config", "/etc/shadow"}},
	} {
		s.attack(t, sp.name, call{as: u, args: sp.args}, readSecret)
	}

	// A store of the user's making, whose privimg is not root's.
	store, err := s.userCopy(u, filepath.Join(s.store, "images", "privimg"), "store/images/privimg")
	if err != nil {
		t.Fatal(err)
	}
	store = filepath.Dir(filepath.Dir(store))
	const marker = "jmpriv: the caller's own image"
	s.userFile(t, u, "store/images/privimg/1/rootfs/jmpriv-marker", []byte(marker+"\n"), 0o644)
	fromStore := func(r result) string {
		if strings.Contains(r.out(), marker) {
			return "the jail's root came from the caller's store " + store
		}
		return ""
	}
	cat := []string{"--", s.tool("cat"), "/jmpriv-marker"}
	for _, sp := range []struct {
		name string
		args []string
		env  []string
	}{
		{"run --store DIR JAIL", append([]string{"run", "--store", store, "eph"}, cat...), nil},
		{"run JAIL --store=DIR", append([]string{"run", "eph", "--store=" + store}, cat...), nil},
		{"--store DIR run JAIL", append([]string{"--store", store, "run", "eph"}, cat...), nil},
		{"--store DIR schroot -c JAIL", append([]string{"--store", store, "schroot", "-c", "eph", "-d", "/"}, cat...), nil},
		{"JAILMGR_STORE=DIR run JAIL", append([]string{"run", "eph"}, cat...), []string{"JAILMGR_STORE=" + store}},
		{"JAILMGR_STORE=DIR schroot -c JAIL", append([]string{"schroot", "-c", "eph", "-d", "/"}, cat...), []string{"JAILMGR_STORE=" + store}},
	} {
		s.attack(t, sp.name, call{as: u, args: sp.args, env: sp.env}, fromStore)
	}
	for _, sp := range []struct {
		name string
		args []string
	}{
		{"session begin --store DIR JAIL", []string{"session", "begin", "--store", store, "eph"}},
		{"session begin JAIL --store=DIR", []string{"session", "begin", "eph", "--store=" + store}},
	} {
		c := call{as: u, args: sp.args}
		r := s.run(c)
		evidence := ""
		if sid := strings.TrimSpace(r.stdout); r.code == 0 && sid != "" {
			evidence = fromStore(s.run(call{as: u, args: append([]string{"session", "run", sid}, cat...)}))
		}
		s.judge(t, sp.name, c, r, evidence)
	}
	{
		c := call{as: u, args: []string{"shell", "--store=" + store, "eph"}, timeout: 20 * time.Second}
		r := s.runPTY(c, s.tool("cat")+" /jmpriv-marker; exit\n")
		s.judge(t, "shell --store=DIR JAIL", c, r, fromStore(r))
	}
	// A store that is not there yet: root must not make it.
	for i, sp := range [][]string{
		{"session", "begin", "--store", "NEW", "eph"},
		{"run", "eph", "--store=NEW", "--", s.tool("true")},
	} {
		fresh := filepath.Join(u.home, "newstore"+strconv.Itoa(i))
		args := make([]string, len(sp))
		for j, a := range sp {
			args[j] = strings.ReplaceAll(a, "NEW", fresh)
		}
		s.attack(t, strings.Join(sp, " ")+" (a folder that is not there)", call{as: u, args: args}, func(r result) string {
			if exists(fresh) {
				return "root made the caller's --store " + fresh
			}
			return ""
		})
	}

	// The run and schroot folders, from the environment.
	runDir := filepath.Join(u.home, "rundir")
	s.mu.Lock()
	s.runDirs = append(s.runDirs, runDir)
	s.mu.Unlock()
	s.attack(t, "JAILMGR_RUN_DIR=DIR session begin JAIL", call{as: u, args: []string{"session", "begin", "eph"}, env: []string{"JAILMGR_RUN_DIR=" + runDir}},
		func(r result) string {
			if exists(runDir) {
				return "the session's state went to the caller's JAILMGR_RUN_DIR " + runDir
			}
			return ""
		})
	sdir := filepath.Dir(s.userFile(t, u, "schroot/schroot.conf", []byte(fmt.Sprintf("[hostroot]\ntype=directory\ndirectory=/\nusers=%[1]s\nroot-users=%[1]s\n", u.name)), 0o644))
	s.attack(t, "JAILMGR_SCHROOT_DIR=DIR schroot -c CHROOT -u root", call{as: u, args: []string{"schroot", "-c", "hostroot", "-u", "root", "-d", "/", "--", id}, env: []string{"JAILMGR_SCHROOT_DIR=" + sdir}}, rootOnHost)
}

// testFlagValuesAsCommands is class 2: a command line whose flag values
// look like commands a user may run ('--name run image import …') must not
// get a root-only command (import, bootstrap, update, rm, gc, config
// check) run, nor jail list/show to take a store.
func testFlagValuesAsCommands(t *testing.T, s *suite) {
	u := s.u1
	// The user's tarball: a root with a setuid-root bin/sh (a copy of id,
	// which shows the euid it runs with) — headers say what anyone likes.
	tarball := filepath.Join(u.home, "evil.tar.zst")
	if err := writeRootTarball(tarball, map[string]string{"bin/sh": s.tool("id")}); err != nil {
		t.Fatal(err)
	}
	chownTree(tarball, u)
	importStore := s.tmpPath("/tmp", "import-store")
	imported := func(name, store string) func(result) string {
		return func(r result) string {
			var ev []string
			for _, st := range []string{store, s.store} {
				if st == "" || !exists(filepath.Join(st, "images", name)) {
					continue
				}
				e := fmt.Sprintf("image import ran as root: %s:1 is in %s", name, st)
				sh := filepath.Join(st, "images", name, "1", "rootfs", "bin", "sh")
				if r2 := s.run(call{as: u, prog: sh}); strings.Contains(r2.stdout, "euid=0(") {
					e += ", and its bin/sh runs with euid 0 for the caller: " + firstLine(r2.stdout)
				}
				ev = append(ev, e)
			}
			return strings.Join(ev, "; ")
		}
	}
	s.attack(t, "--name run image import TAR --name NAME --store DIR",
		call{as: u, args: []string{"--name", "run", "image", "import", tarball, "--name", "jmprivimp", "--store", importStore}}, imported("jmprivimp", importStore))
	s.attack(t, "--name run image import TAR --name NAME (the configured store)",
		call{as: u, args: []string{"--name", "run", "image", "import", tarball, "--name", "jmprivimp2"}}, imported("jmprivimp2", ""))

	// bootstrap: the hook would run as root; the mirror is a closed
	// loopback port, so nothing is fetched.
	for i, pre := range [][]string{{"--name", "run"}, {"--include", "run"}} {
		bs := filepath.Join(u.home, "bootstrap-store"+strconv.Itoa(i))
		hook := filepath.Join(s.evidence, "bootstrap-hook"+strconv.Itoa(i))
		args := append(append([]string{}, pre...), "bootstrap", "bookworm", "--store", bs, "--mirror", "http://127.0.0.1:1/", "--customize-hook", "touch "+hook)
		s.attack(t, strings.Join(pre, " ")+" bootstrap SUITE --customize-hook CMD --store DIR", call{as: u, args: args}, func(r result) string {
			switch {
			case exists(hook):
				return "bootstrap ran the caller's --customize-hook as root"
			case exists(bs):
				return "bootstrap ran as root: it made the caller's --store " + bs
			}
			return ""
		})
	}
	s.attack(t, "--include run image update IMAGE", call{as: u, args: []string{"--include", "run", "image", "update", "privimg"}}, func(r result) string {
		if exists(filepath.Dir(s.imageRoot("privimg", 2))) {
			return "image update ran as root: it committed privimg:2"
		}
		if strings.Contains(r.stderr, "update privimg") {
			return "image update ran as root (its own error: " + firstLine(r.stderr) + ")"
		}
		return ""
	})

	// image rm of rmimg, image gc of gcimg's older version.
	versions := func(name string) []string {
		ents, _ := os.ReadDir(filepath.Join(s.store, "images", name))
		var vs []string
		for _, e := range ents {
			if _, err := strconv.Atoi(e.Name()); err == nil {
				vs = append(vs, e.Name())
			}
		}
		return vs
	}
	ensure := func(name string, n int) []string {
		for len(versions(name)) < n {
			if r := s.root("image", "create", name, "--from-host", s.tool("true")); r.code != 0 {
				t.Fatalf("precondition: image create %s: %s", name, r)
			}
		}
		return versions(name)
	}
	removed := func(name string, before []string) func(result) string {
		return func(r result) string {
			after := versions(name)
			for _, v := range before {
				found := false
				for _, a := range after {
					found = found || a == v
				}
				if !found {
					return fmt.Sprintf("%s:%s was removed by a root process", name, v)
				}
			}
			return ""
		}
	}
	for _, sp := range [][]string{
		{"", "image", "rm", "rmimg"},
		{"-f", "run", "image", "rm", "rmimg"},
		{"--force", "run", "image", "rm", "rmimg"},
		{"-q", "image", "rm", "rmimg"},
		{"--quiet=true", "image", "rm", "rmimg"},
		{"image", "rm", "rmimg"},
		{"help", "image", "rm", "rmimg"},
		{"-h", "image", "rm", "rmimg"},
	} {
		before := ensure("rmimg", 1)
		s.attack(t, spell(sp), call{as: u, args: sp}, removed("rmimg", before))
	}
	for _, sp := range [][]string{
		{"", "image", "gc"},
		{"-q", "image", "gc"},
		{"--quiet=true", "image", "gc"},
		{"--json", "run", "image", "gc"},
		{"image", "gc", "--keep", "0"},
	} {
		before := ensure("gcimg", 2)
		s.attack(t, spell(sp), call{as: u, args: sp}, removed("gcimg", before[:len(before)-1]))
	}
	for _, sp := range [][]string{
		{"", "config", "check"},
		{"--quiet=true", "config", "check"},
		{"-q", "config", "check"},
		{"config", "check", "--config", s.secret},
	} {
		s.attack(t, strings.ReplaceAll(spell(sp), s.secret, "SECRET"), call{as: u, args: sp}, func(r result) string {
			if strings.Contains(r.out(), s.secretJail) {
				return "config check read root's 0600 " + s.secret + " for the caller"
			}
			if r.code == 0 {
				return "config check, root's, ran for the caller (exit 0)"
			}
			return ""
		})
	}
	for i, sp := range [][]string{
		{"jail", "list", "--store", "DIR"},
		{"jail", "show", "eph", "--store=DIR"},
		{"--name", "run", "jail", "list", "--store", "DIR"},
	} {
		dir := filepath.Join(u.home, "jailstore"+strconv.Itoa(i))
		args := make([]string, len(sp))
		for j, a := range sp {
			args[j] = strings.ReplaceAll(a, "DIR", dir)
		}
		s.attack(t, spell(sp), call{as: u, args: args}, func(r result) string {
			if exists(dir) {
				return "root made the caller's --store " + dir
			}
			return ""
		})
	}
}

// spell shows a command line's arguments as one would type them.
func spell(args []string) string {
	var q []string
	for _, a := range args {
		if a == "" {
			a = "''"
		}
		q = append(q, a)
	}
	return strings.Join(q, " ")
}
