package bootstrap

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// debootstrap's suite scripts name each suite's default mirror, which is
// the one source of an Ubuntu mirror a Debian host usually has: its apt
// sources name only Debian. They are shell, but the part that matters is a
// plain nest of case statements on $ARCH and $SUITE around default_mirror
// lines (gutsy's: old-releases for old suites, the main archive for
// amd64/i386, ports for the rest), which scriptMirror evaluates without a
// shell.

// maxScript bounds what is read of one script; the real ones are ~10 KiB.
const maxScript = 1 << 20

// debootstrapScript is what a suite script says that bootstrap uses.
type debootstrapScript struct {
	Mirror  string // "" if no default_mirror line applies
	Keyring string // the file of its top-level keyring line, "" if none
}

// scriptMirror reads a debootstrap suite script and returns the
// default_mirror that applies to arch and suite, as the shell would pick it,
// and the keyring the script names. Lines inside case branches that do not
// match are skipped; a case on any variable other than ARCH or SUITE takes
// only its * branch. Everything else in the script is ignored.
func scriptMirror(r io.Reader, name, arch, suite string) (debootstrapScript, error) {
	type frame struct {
		word          string
		known         bool // word is ARCH or SUITE
		outerOn       bool // the code around the case runs
		matched, on   bool // a branch matched; the current one runs
		expectPattern bool
	}
	var (
		out    debootstrapScript
		frames []*frame
	)
	running := func() bool {
		if len(frames) == 0 {
			return true
		}
		return frames[len(frames)-1].on
	}
	sc := bufio.NewScanner(io.LimitReader(r, maxScript))
	sc.Buffer(make([]byte, 0, 4096), maxScript)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		if n := len(frames); n > 0 && frames[n-1].expectPattern {
			f := frames[n-1]
			if text == "esac" {
				frames = frames[:n-1]
				continue
			}
			pats, rest, ok := strings.Cut(text, ")")
			if !ok {
				return out, fmt.Errorf("read %s: line %d: %q is not a case pattern", name, line, text)
			}
			f.on = f.outerOn && !f.matched && casePatternMatches(strings.TrimPrefix(strings.TrimSpace(pats), "("), f.word, f.known)
			f.matched = f.matched || f.on
			f.expectPattern = false
			text = strings.TrimSpace(rest)
		}
		cmd, endsBranch := strings.CutSuffix(text, ";;")
		cmd = strings.TrimSpace(cmd)
		words := strings.Fields(cmd)
		switch {
		case len(words) == 3 && words[0] == "case" && words[2] == "in":
			word, known := caseWord(words[1], arch, suite)
			frames = append(frames, &frame{word: word, known: known, outerOn: running(), expectPattern: true})
		case cmd == "esac":
			if len(frames) == 0 {
				return out, fmt.Errorf("read %s: line %d: esac without case", name, line)
			}
			frames = frames[:len(frames)-1]
		case len(words) == 2 && words[0] == "default_mirror" && running():
			out.Mirror = strings.Trim(words[1], `"'`)
		case len(words) == 2 && words[0] == "keyring" && len(frames) == 0:
			out.Keyring = strings.Trim(words[1], `"'`)
		}
		if endsBranch {
			if len(frames) == 0 {
				return out, fmt.Errorf("read %s: line %d: ;; outside a case", name, line)
			}
			f := frames[len(frames)-1]
			f.on, f.expectPattern = false, true
		}
	}
	if err := sc.Err(); err != nil {
		return out, fmt.Errorf("read %s: %w", name, err)
	}
	if len(frames) > 0 {
		return out, fmt.Errorf("read %s: case without esac", name)
	}
	return out, nil
}

// caseWord is the value of a case statement's word: $ARCH or $SUITE,
// quoted or braced or not.
func caseWord(w, arch, suite string) (string, bool) {
	w = strings.Trim(w, `"`)
	switch strings.Trim(strings.TrimPrefix(w, "$"), "{}") {
	case "ARCH":
		return arch, true
	case "SUITE":
		return suite, true
	}
	return "", false
}

// casePatternMatches reports whether a branch's patterns (a|b|c*) match
// the word; an unknown word matches only *.
func casePatternMatches(pats, word string, known bool) bool {
	for _, p := range strings.Split(pats, "|") {
		p = strings.Trim(strings.TrimSpace(p), `"'`)
		if p == "*" {
			return true
		}
		if ok, err := path.Match(p, word); known && err == nil && ok {
			return true
		}
	}
	return false
}

// errNoDebootstrap says the host has no debootstrap scripts folder.
var errNoDebootstrap = errors.New("debootstrap is not installed")

// debootstrapMirror finds the suite's default mirror for arch in the host's
// debootstrap scripts in dir: the suite's own script (a symlink, as most
// are, is followed), or, when debootstrap is older than the suite, the
// script of the suite's distribution that most names link to: upstream
// links every newer Ubuntu suite to gutsy, every Debian one to sid, so that
// is the script a newer debootstrap would use. A script is of the suite's
// distribution if it names the suite's keyring. from names the script read.
// It returns errNoDebootstrap if dir does not exist, and "" if no script
// names a mirror for the suite.
func debootstrapMirror(dir string, s *Suite, arch string) (mirror, from string, err error) {
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return "", "", errNoDebootstrap
	} else if err != nil {
		return "", "", fmt.Errorf("read debootstrap scripts: %w", err)
	}
	if filepath.Base(s.Name) == s.Name {
		real, err := filepath.EvalSymlinks(filepath.Join(dir, s.Name))
		if err == nil {
			sc, err := readScript(real, arch, s.Name)
			if err != nil {
				return "", "", err
			}
			// A script of that name for another distribution is not the
			// suite's (its keyring would not verify the archive anyway).
			if sc.Keyring == "" || filepath.Base(sc.Keyring) == s.Keyring {
				if sc.Mirror == "" {
					return "", "", nil
				}
				return sc.Mirror, "debootstrap's script " + real, nil
			}
		} else if !errors.Is(err, fs.ErrNotExist) {
			return "", "", fmt.Errorf("read debootstrap scripts: %w", err)
		}
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return "", "", fmt.Errorf("read debootstrap scripts: %w", err)
	}
	links := map[string]int{}
	for _, e := range ents {
		if real, err := filepath.EvalSymlinks(filepath.Join(dir, e.Name())); err == nil {
			links[real]++
		}
	}
	reals := make([]string, 0, len(links))
	for r := range links {
		reals = append(reals, r)
	}
	// Most links first; the name decides a tie, so the choice is stable.
	sort.Slice(reals, func(i, j int) bool {
		if links[reals[i]] != links[reals[j]] {
			return links[reals[i]] > links[reals[j]]
		}
		return reals[i] < reals[j]
	})
	for _, real := range reals {
		if fi, err := os.Stat(real); err != nil || !fi.Mode().IsRegular() {
			continue
		}
		sc, err := readScript(real, arch, s.Name)
		if err != nil || filepath.Base(sc.Keyring) != s.Keyring {
			// Another distribution's script, or one that is not the
			// simple shell scriptMirror reads: not the one wanted.
			continue
		}
		// Only the newest script counts: older ones name archives of
		// old releases (etch's is the Debian archive of removed suites).
		if sc.Mirror == "" {
			return "", "", nil
		}
		return sc.Mirror, fmt.Sprintf("debootstrap's script %s, as it has none for %s", real, s.Name), nil
	}
	return "", "", nil
}

func readScript(file, arch, suite string) (debootstrapScript, error) {
	f, err := os.Open(file)
	if err != nil {
		return debootstrapScript{}, fmt.Errorf("read debootstrap script: %w", err)
	}
	defer f.Close()
	return scriptMirror(f, file, arch, suite)
}
