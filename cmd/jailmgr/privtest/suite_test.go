package privtest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

const (
	// envGate turns the suite on (make test-privilege sets it); envSrc
	// names the checkout to install from (default: this one).
	envGate = "JAILMGR_PRIVTEST"
	envSrc  = "JAILMGR_PRIVTEST_SRC"
	// prefixPattern names the scratch prefixes under /var/tmp; one left by
	// a killed run is removed by the next.
	prefixPattern = "jailmgr-privtest-"
	// The users the attacks run as, and a supplementary group of the first.
	user1Name  = "jmpriv1"
	user2Name  = "jmpriv2"
	extraGroup = "jmprivg"
	// deadline is when the suite gives up, cleans up and fails, before go
	// test's own -timeout would kill it without cleaning up.
	deadline = 7 * time.Minute
)

// skipReason is set when the suite is off; every test skips with it.
var skipReason string

// the is the prepared installation every test attacks.
var the *suite

func TestMain(m *testing.M) {
	flag.Parse()
	if f := flag.Lookup("test.list"); f != nil && f.Value.String() != "" {
		os.Exit(m.Run()) // listing the tests (make fuzz does) prepares nothing
	}
	if os.Getenv(envGate) == "" {
		skipReason = "it installs jailmgr setuid root and adds users to this machine: run 'make test-privilege' as root (sets " + envGate + "=1)"
		os.Exit(m.Run())
	}
	if os.Geteuid() != 0 {
		fmt.Fprintf(os.Stderr, "privtest: FAIL: %s=1 but not root (euid %d): the privilege suite installs a setuid-root jailmgr and adds users, run it as root\n", envGate, os.Geteuid())
		os.Exit(1)
	}
	os.Exit(runSuite(m))
}

// runSuite prepares the installation, runs the tests and cleans up, also
// on a signal or when the suite overruns its deadline.
func runSuite(m *testing.M) int {
	s := &suite{}
	var once sync.Once
	cleanup := func() { once.Do(s.tearDown) }
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		select {
		case sig := <-sigs:
			fmt.Fprintf(os.Stderr, "privtest: %v: cleaning up\n", sig)
		case <-time.After(deadline):
			fmt.Fprintf(os.Stderr, "privtest: FAIL: still running after %v: cleaning up\n", deadline)
		}
		cleanup()
		os.Exit(1)
	}()
	defer cleanup()
	start := time.Now()
	if err := s.setUp(); err != nil {
		fmt.Fprintf(os.Stderr, "privtest: FAIL: set up: %v\n", err)
		return 1
	}
	fmt.Printf("privtest: installed from %s into %s in %v; users %s (uid %d), %s (uid %d)\n",
		s.src, s.prefix, time.Since(start).Round(time.Millisecond), s.u1.name, s.u1.uid, s.u2.name, s.u2.uid)
	the = s
	return m.Run()
}

// suite is one installation under attack.
type suite struct {
	src    string // the checkout installed from
	token  string // in the names of everything this run makes outside prefix
	prefix string
	bin    string // prefix/bin/jailmgr, setuid root
	init   string // prefix/lib/jailmgr/jailmgr-init
	// The folders baked into bin.
	conf, store, runDir, schrootDir string
	// evidence is root's (0755): a file appearing there was made by root.
	evidence string
	// scratch is root's (0700): files only the tests (as root) use.
	scratch string
	// secret is a configuration only root may read; it defines secretJail.
	secret, secretJail string
	stamp              string // the build stamp of bin (for a forged spec.json)
	// tools are the host programs in every image, by name: the same path
	// on the host and in the jails.
	tools    map[string]string
	hostOnly []string // names in the host's / that the image's root lacks
	u1, u2   *account
	group    int // extraGroup's gid, a supplementary group of u1
	victim   *victim

	mu sync.Mutex
	// rootOwned are the root-owned paths in the users' reach seen so far
	// (each is reported once); evidenceSeen likewise for evidence.
	rootOwned    map[string]bool
	evidenceSeen map[string]bool
	// running are the processes the tests started and have not waited
	// for; tearDown kills them (by pid). Once stopping, nothing new starts.
	running  map[*exec.Cmd]bool
	stopping bool
	// runDirs are run dirs besides runDir that a session may have been
	// put in by an attack that worked.
	runDirs []string
}

// account is a user the attacks run as.
type account struct {
	name     string
	uid, gid int
	groups   []uint32 // supplementary groups of its processes
	home     string
}

func (s *suite) setUp() error {
	s.rootOwned, s.evidenceSeen = map[string]bool{}, map[string]bool{}
	var err error
	if s.src, err = sourceDir(); err != nil {
		return err
	}
	sweepStale()
	s.tools = map[string]string{}
	for _, name := range imageTools {
		p, err := lookPath(name)
		if err != nil {
			return err
		}
		s.tools[name] = p
	}
	var b [4]byte
	rand.Read(b[:])
	s.token = "jmpriv-" + hex.EncodeToString(b[:])
	if s.prefix, err = os.MkdirTemp("/var/tmp", prefixPattern); err != nil {
		return err
	}
	if err := os.Chmod(s.prefix, 0o755); err != nil {
		return err
	}
	if err := checkSetuidCapable(s.prefix); err != nil {
		return err
	}
	s.bin = filepath.Join(s.prefix, "bin", "jailmgr")
	s.init = filepath.Join(s.prefix, "lib", "jailmgr", "jailmgr-init")
	s.conf = filepath.Join(s.prefix, "etc", "jailmgr.conf")
	s.schrootDir = filepath.Join(s.prefix, "etc", "schroot")
	s.store = filepath.Join(s.prefix, "var", "lib", "jailmgr")
	s.runDir = filepath.Join(s.prefix, "run", "jailmgr", "sessions")
	s.evidence = filepath.Join(s.prefix, "evidence")
	s.scratch = filepath.Join(s.prefix, "scratch")
	if err := s.install(); err != nil {
		return err
	}
	if err := s.addUsers(); err != nil {
		return err
	}
	return s.prepare()
}

// sourceDir is the checkout to install: envSrc, else the module this test
// is in.
func sourceDir() (string, error) {
	if d := os.Getenv(envSrc); d != "" {
		return filepath.Abs(d)
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := dir; d != "/"; d = filepath.Dir(d) {
		if data, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil && bytes.HasPrefix(data, []byte("module jailmgr\n")) {
			return d, nil
		}
	}
	return "", fmt.Errorf("no jailmgr checkout above %s (set %s)", dir, envSrc)
}

// checkSetuidCapable makes sure setuid bits take effect under dir and the
// test users can reach it.
func checkSetuidCapable(dir string) error {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return err
	}
	if st.Flags&unix.ST_NOSUID != 0 {
		return fmt.Errorf("%s is on a filesystem mounted nosuid: a setuid install there proves nothing", dir)
	}
	for d := filepath.Dir(dir); ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return err
		}
		if fi.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("%s is not searchable by other users (mode %v): the test users could not reach the install", d, fi.Mode().Perm())
		}
		if d == "/" {
			return nil
		}
	}
}

// install runs the checkout's 'make install' into the prefix, setuid, with
// the prefix's folders baked in, and checks that they are.
func (s *suite) install() error {
	build := filepath.Join(s.prefix, "build")
	args := []string{"-C", s.src, "install", "SETUID=1", "PREFIX=" + s.prefix, "BUILDDIR=" + build,
		"SYSCONFDIR=" + filepath.Join(s.prefix, "etc"), "LOCALSTATEDIR=" + filepath.Join(s.prefix, "var"),
		"RUNSTATEDIR=" + filepath.Join(s.prefix, "run")}
	cmd := exec.Command("make", args...)
	// Nothing of an outer make's command line or of the environment may
	// move the install or its paths: the check below would stop the suite.
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "DESTDIR", "PREFIX", "SETUID", "BUILDDIR",
			"CONFFILE", "STOREDIR", "RUNDIR", "SCHROOTDIR", "SYSCONFDIR", "LOCALSTATEDIR", "RUNSTATEDIR", "PATH":
			continue
		}
		cmd.Env = append(cmd.Env, kv)
	}
	cmd.Env = append(cmd.Env, "PATH="+os.Getenv("PATH")+":/usr/local/go/bin")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("make %s: %v\n%s", strings.Join(args, " "), err, tail(out, 4000))
	}
	os.RemoveAll(build)
	fi, err := os.Stat(s.bin)
	if err != nil {
		return err
	}
	if fi.Mode()&fs.ModeSetuid == 0 || fi.Sys().(*syscall.Stat_t).Uid != 0 {
		return fmt.Errorf("make install SETUID=1 made %s %v, not setuid root", s.bin, fi.Mode())
	}
	// A binary without the prefix's paths would work on the host's
	// /etc/jailmgr.conf, /var/lib/jailmgr and /run/jailmgr: stop here.
	data, err := os.ReadFile(s.bin)
	if err != nil {
		return err
	}
	for _, p := range []string{s.conf, s.store, s.runDir, s.schrootDir} {
		if !bytes.Contains(data, []byte(p)) {
			return fmt.Errorf("%s does not have %s baked in: the Makefile of %s does not take SYSCONFDIR, LOCALSTATEDIR and RUNSTATEDIR (-ldflags -X), and the suite will not run a setuid jailmgr on the host's own paths", s.bin, p, s.src)
		}
	}
	if _, err := os.Stat(s.init); err != nil {
		return fmt.Errorf("make install did not install the session init: %w", err)
	}
	return nil
}

// addUsers adds the two users (and u1's supplementary group), replacing
// any left by a killed run.
func (s *suite) addUsers() error {
	removeUsers()
	if out, err := exec.Command("groupadd", extraGroup).CombinedOutput(); err != nil {
		return fmt.Errorf("groupadd %s: %v: %s", extraGroup, err, out)
	}
	g, err := user.LookupGroup(extraGroup)
	if err != nil {
		return err
	}
	s.group, _ = strconv.Atoi(g.Gid)
	for _, spec := range []struct {
		name  string
		extra []string
		to    **account
	}{{user1Name, []string{"-G", extraGroup}, &s.u1}, {user2Name, nil, &s.u2}} {
		// The login shell is the sh of the images, where 'shell' runs it.
		args := append([]string{"-m", "-s", s.tool("sh"), "-K", "HOME_MODE=0700"}, spec.extra...)
		if out, err := exec.Command("useradd", append(args, spec.name)...).CombinedOutput(); err != nil {
			return fmt.Errorf("useradd %s: %v: %s", spec.name, err, out)
		}
		u, err := user.Lookup(spec.name)
		if err != nil {
			return err
		}
		a := &account{name: spec.name, home: u.HomeDir}
		a.uid, _ = strconv.Atoi(u.Uid)
		a.gid, _ = strconv.Atoi(u.Gid)
		a.groups = []uint32{uint32(a.gid)}
		if spec.extra != nil {
			a.groups = append(a.groups, uint32(s.group))
		}
		*spec.to = a
	}
	return nil
}

// removeUsers deletes the users, their homes and the group.
func removeUsers() {
	for _, name := range []string{user1Name, user2Name} {
		if _, err := user.Lookup(name); err == nil {
			if out, err := exec.Command("userdel", "-r", "-f", name).CombinedOutput(); err != nil {
				fmt.Fprintf(os.Stderr, "privtest: userdel %s: %v: %s\n", name, err, out)
			}
		}
	}
	if _, err := user.LookupGroup(extraGroup); err == nil {
		exec.Command("groupdel", extraGroup).Run()
	}
}

// prepare makes, as root, what the attacks need: images, jails, the
// configuration, the evidence folder, a victim.
func (s *suite) prepare() error {
	for _, d := range []struct {
		path string
		mode os.FileMode
	}{{s.evidence, 0o755}, {s.scratch, 0o700}, {filepath.Join(s.prefix, "etc"), 0o755}, {filepath.Join(s.prefix, "srv"), 0o755}} {
		if err := os.MkdirAll(d.path, d.mode); err != nil {
			return err
		}
		os.Chmod(d.path, d.mode)
	}
	// The images: privimg for the jails, rmimg to be removed, gcimg with a
	// version for gc to collect, suidimg with a setuid-root file.
	var tools []string
	for _, name := range imageTools {
		tools = append(tools, s.tool(name))
	}
	for _, img := range []string{"privimg", "rmimg", "gcimg", "gcimg"} {
		if r := s.root(append([]string{"image", "create", img, "--from-host"}, tools...)...); r.code != 0 {
			return fmt.Errorf("image create %s: %s", img, r)
		}
	}
	tarball := filepath.Join(s.scratch, "suidimg.tar.zst")
	if err := writeRootTarball(tarball, map[string]string{"jmpriv-suid-id": s.tool("id")}); err != nil {
		return err
	}
	if r := s.root("image", "import", tarball, "--name", "suidimg"); r.code != 0 {
		return fmt.Errorf("image import suidimg: %s", r)
	}
	// A directory jail: a copy of privimg's root.
	dirjail := filepath.Join(s.prefix, "srv", "dirjail")
	if out, err := exec.Command("cp", "-a", s.imageRoot("privimg", 1), dirjail).CombinedOutput(); err != nil {
		return fmt.Errorf("cp: %v: %s", err, out)
	}
	s.secretJail = "secret-" + s.token
	s.secret = filepath.Join(s.scratch, "secret.conf")
	if err := os.WriteFile(s.secret, []byte("["+s.secretJail+"]\ndirectory = /srv\n"), 0o600); err != nil {
		return err
	}
	conf := fmt.Sprintf(`; written by cmd/jailmgr/privtest
[eph]
image = privimg
users = %[1]s, %[2]s
mounts = proc, dev, tmp, home

[rootj]
image = privimg
users = %[1]s
root-users = %[1]s
mounts = proc, dev, tmp

[pers]
image = privimg
type = persistent
users = %[1]s, %[2]s
root-users = %[1]s
mounts = proc, dev, tmp

[dirj]
directory = %[3]s
users = %[1]s
mounts = proc, dev, tmp
`, s.u1.name, s.u2.name, dirjail)
	if err := os.WriteFile(s.conf, []byte(conf), 0o644); err != nil {
		return err
	}
	if err := os.MkdirAll(s.schrootDir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(s.schrootDir, "schroot.conf"), []byte("# written by cmd/jailmgr/privtest\n"), 0o644); err != nil {
		return err
	}
	r := s.root("__jailmgr-build")
	s.stamp = strings.TrimSpace(r.stdout)
	if r.code != 0 || s.stamp == "" {
		return fmt.Errorf("read the build stamp: %s", r)
	}
	if err := s.computeHostOnly(); err != nil {
		return err
	}
	if err := s.startVictim(); err != nil {
		return err
	}
	if err := s.positiveControls(); err != nil {
		return err
	}
	// What the users can reach from the start is not the attacks' doing.
	s.rootOwnedSince()
	s.newEvidence()
	return nil
}

// imageTools are the host programs every image of the suite has.
var imageTools = []string{"sh", "ls", "cat", "id", "sleep", "cp", "chmod", "touch", "true"}

// tool is where a program of imageTools is, on the host and in the jails.
func (s *suite) tool(name string) string {
	p, ok := s.tools[name]
	if !ok {
		panic("privtest: " + name + " is not one of imageTools")
	}
	return p
}

func lookPath(name string) (string, error) {
	for _, d := range []string{"/usr/bin", "/bin"} {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: not in /usr/bin or /bin", name)
}

// imageRoot is where version n of an image keeps its root (DESIGN.md's
// store layout).
func (s *suite) imageRoot(name string, n int) string {
	return filepath.Join(s.store, "images", name, strconv.Itoa(n), "rootfs")
}

// computeHostOnly lists the host's top-level names that the image's root
// has not: one of them seen inside a jail is the host's root.
func (s *suite) computeHostOnly() error {
	host, err := os.ReadDir("/")
	if err != nil {
		return err
	}
	img, err := os.ReadDir(s.imageRoot("privimg", 1))
	if err != nil {
		return err
	}
	var inImage []string
	for _, e := range img {
		inImage = append(inImage, e.Name())
	}
	for _, e := range host {
		if !slices.Contains(inImage, e.Name()) {
			s.hostOnly = append(s.hostOnly, e.Name())
		}
	}
	if len(s.hostOnly) == 0 {
		return errors.New("the host's / has nothing the image's root lacks: cannot tell them apart")
	}
	return nil
}

// positiveControls checks that the install works for what the
// configuration grants: an attack refused by a jailmgr that refuses
// everything proves nothing.
func (s *suite) positiveControls() error {
	for _, c := range []struct {
		who  *account
		args []string
		want string
	}{
		{s.u1, []string{"run", "eph", "--", s.tool("id"), "-u"}, strconv.Itoa(s.u1.uid)},
		{s.u2, []string{"run", "eph", "--", s.tool("id"), "-u"}, strconv.Itoa(s.u2.uid)},
		{s.u1, []string{"run", "rootj", "-u", "root", "--", s.tool("id"), "-u"}, "0"},
		{s.u1, []string{"run", "dirj", "--", s.tool("id"), "-u"}, strconv.Itoa(s.u1.uid)},
		{s.u1, []string{"jail", "list"}, "rootj"},
	} {
		r := s.run(call{as: c.who, args: c.args})
		if r.code != 0 || !strings.Contains(r.stdout, c.want) {
			return fmt.Errorf("the setuid install does not work for what the configuration grants: as %s, %s: %s (want exit 0 and %q)", c.who.name, r.cmdline, r, c.want)
		}
	}
	return nil
}

// tearDown ends every session, stops what the tests started, removes the
// users and the prefix. It runs once, also after a failed set-up.
func (s *suite) tearDown() {
	if s.prefix == "" {
		return
	}
	s.mu.Lock()
	s.stopping = true
	for c := range s.running {
		c.Process.Kill()
	}
	s.mu.Unlock()
	s.endAll()
	s.stopVictim()
	removeUsers()
	for _, base := range []string{"/tmp", "/var/tmp", "/dev/shm"} {
		ents, _ := os.ReadDir(base)
		for _, e := range ents {
			if s.token != "" && strings.Contains(e.Name(), s.token) {
				if err := safeRemove(filepath.Join(base, e.Name())); err != nil {
					fmt.Fprintf(os.Stderr, "privtest: %v\n", err)
				}
			}
		}
	}
	if err := safeRemove(s.prefix); err != nil {
		fmt.Fprintf(os.Stderr, "privtest: %v\n", err)
	}
}

// endAll ends, as root, every session in the run dirs, whatever state it
// is in.
func (s *suite) endAll() {
	if s.bin == "" {
		return
	}
	if _, err := os.Stat(s.bin); err != nil {
		return
	}
	s.mu.Lock()
	dirs := append([]string{""}, s.runDirs...)
	s.mu.Unlock()
	for _, d := range dirs {
		var env []string
		dir := s.runDir
		if d != "" {
			env, dir = []string{"JAILMGR_RUN_DIR=" + d}, d
		}
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if e.IsDir() {
				s.run(call{args: []string{"session", "end", e.Name()}, env: env, cleanup: true})
			}
		}
		s.run(call{args: []string{"session", "recover"}, env: env, cleanup: true})
	}
}

// sweepStale removes what a killed run left: sessions, victims, prefixes,
// users.
func sweepStale() {
	prefixes, _ := filepath.Glob(filepath.Join("/var/tmp", prefixPattern+"*"))
	for _, p := range prefixes {
		old := &suite{prefix: p, bin: filepath.Join(p, "bin", "jailmgr"), runDir: filepath.Join(p, "run", "jailmgr", "sessions"),
			rootOwned: map[string]bool{}, evidenceSeen: map[string]bool{}}
		old.loadVictim()
		fmt.Fprintf(os.Stderr, "privtest: removing %s, left by an earlier run\n", p)
		old.endAll()
		old.stopVictim()
		if err := safeRemove(p); err != nil {
			fmt.Fprintf(os.Stderr, "privtest: %v\n", err)
		}
	}
	for _, base := range []string{"/tmp", "/var/tmp", "/dev/shm"} {
		left, _ := filepath.Glob(filepath.Join(base, "jmpriv-*"))
		for _, p := range left {
			if err := safeRemove(p); err != nil {
				fmt.Fprintf(os.Stderr, "privtest: %v\n", err)
			}
		}
	}
	removeUsers()
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
