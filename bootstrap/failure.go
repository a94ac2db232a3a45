package bootstrap

import (
	"fmt"
	"strings"
)

// maxFailureLines bounds what an error shows of one package's output: the
// cause is near the start (what the script said) or the end (how dpkg saw
// it ended), so the middle is what goes.
const maxFailureLines = 40

// PackageFailure is one package that failed while a new root was being
// configured, with what it printed.
type PackageFailure struct {
	// Package is the package as dpkg names it ("foo", or "foo:amd64" for
	// a Multi-Arch: same package).
	Package string
	// Script is "preinst" for a preinst that jailmgr ran itself, and ""
	// for a failure of dpkg --configure (the postinst, or dependency
	// problems).
	Script string
	// Output is the package's own lines of the log, at most
	// maxFailureLines of them with the middle elided.
	Output []string
}

// ConfigureError is a configure run (jailmgr's preinst calls, then dpkg
// --configure in the new root) that failed.
type ConfigureError struct {
	// Failures are the packages the log names as failed, in dpkg's
	// order: the first is usually the cause, later ones often only
	// depend on it. Empty when the log names none.
	Failures []PackageFailure
	// Tail is the end of the log, shown when no package is named.
	Tail []string
	// Err is how the run ended (its exit status).
	Err error
}

func (e *ConfigureError) Error() string {
	var b strings.Builder
	switch {
	case len(e.Failures) == 0:
		fmt.Fprintf(&b, "configure packages: %v", e.Err)
		writeQuoted(&b, e.Tail)
	case len(e.Failures) == 1 && e.Failures[0].Script == "preinst":
		fmt.Fprintf(&b, "configure packages: preinst of %s failed (%v):", e.Failures[0].Package, e.Err)
		writeQuoted(&b, e.Failures[0].Output)
	case len(e.Failures) == 1:
		fmt.Fprintf(&b, "configure packages: dpkg could not configure %s (%v):", e.Failures[0].Package, e.Err)
		writeQuoted(&b, e.Failures[0].Output)
	default:
		names := make([]string, len(e.Failures))
		for i, f := range e.Failures {
			names[i] = f.Package
		}
		fmt.Fprintf(&b, "configure packages: dpkg could not configure %s (%v)", strings.Join(names, ", "), e.Err)
		// The first few are enough: the later ones mostly failed because
		// they depend on an earlier one, and the full log has them all.
		const shown = 3
		for i, f := range e.Failures {
			if i == shown {
				fmt.Fprintf(&b, "\n(%d more in the full log)", len(e.Failures)-shown)
				break
			}
			fmt.Fprintf(&b, "\n%s:", f.Package)
			writeQuoted(&b, f.Output)
		}
	}
	return b.String()
}

func (e *ConfigureError) Unwrap() error { return e.Err }

// writeQuoted writes lines indented and marked as quoted output.
func writeQuoted(b *strings.Builder, lines []string) {
	for _, l := range lines {
		b.WriteString("\n  |")
		if l != "" {
			b.WriteString(" " + l)
		}
	}
}

// Lines of dpkg's output (see dpkg's src/main/configure.c and
// src/main/errors.c) and of the script configureScript writes.
const (
	dpkgSettingUp   = "Setting up "
	dpkgErrorPrefix = "dpkg: error processing package "
	dpkgErrorsEnd   = "Errors were encountered while processing:"
	dpkgDepProblems = "dpkg: dependency problems prevent configuration of "
	dpkgTriggers    = "Processing triggers for "
	preinstMarker   = "jailmgr: preinst "
)

// failuresFromLog finds in the log of a failed configure run the packages
// that failed and each one's own output.
//
// dpkg ends a run with failures with "Errors were encountered while
// processing:" and the failed packages, one a line, indented. A package's
// output runs from dpkg's "Setting up PKG (VERSION) ..." (or, for a
// package dpkg would not configure, its "dependency problems prevent
// configuration of PKG:") to its "dpkg: error processing package PKG
// (--configure):" and the indented lines after it, up to dpkg's next step.
//
// When dpkg names no failure and the last thing the log shows is jailmgr's
// "jailmgr: preinst PKG" with no dpkg output after it, that preinst failed
// (the script stops at the first failure), and its output is everything
// after the marker.
func failuresFromLog(log string) []PackageFailure {
	lines := strings.Split(strings.TrimRight(log, "\n"), "\n")
	if names := failedPackages(lines); len(names) > 0 {
		out := make([]PackageFailure, 0, len(names))
		for _, n := range names {
			out = append(out, PackageFailure{Package: n, Output: elide(packageOutput(lines, n), maxFailureLines)})
		}
		return out
	}
	for i := len(lines) - 1; i >= 0; i-- {
		l := lines[i]
		if pkg, ok := strings.CutPrefix(l, preinstMarker); ok {
			return []PackageFailure{{Package: strings.TrimSpace(pkg), Script: "preinst", Output: elide(lines[i:], maxFailureLines)}}
		}
		if isDpkgStep(l) || strings.HasPrefix(l, "dpkg: ") {
			// dpkg ran after the last preinst: the failure is dpkg's, and
			// it named no package.
			return nil
		}
	}
	return nil
}

// failedPackages reads the package list after dpkg's last "Errors were
// encountered while processing:".
func failedPackages(lines []string) []string {
	end := -1
	for i := len(lines) - 1; i >= 0; i-- {
		if lines[i] == dpkgErrorsEnd {
			end = i
			break
		}
	}
	if end < 0 {
		return nil
	}
	var names []string
	for _, l := range lines[end+1:] {
		if !strings.HasPrefix(l, " ") {
			break
		}
		if n := strings.TrimSpace(l); n != "" {
			names = append(names, n)
		}
	}
	return names
}

// packageOutput is pkg's part of the log: see failuresFromLog.
func packageOutput(lines []string, pkg string) []string {
	errAt := -1
	for i := len(lines) - 1; i >= 0; i-- {
		if n, ok := dpkgErrorPackage(lines[i]); ok && samePackage(n, pkg) {
			errAt = i
			break
		}
	}
	if errAt < 0 {
		return nil
	}
	start := errAt
	for i := errAt - 1; i >= 0; i-- {
		l := lines[i]
		if rest, ok := strings.CutPrefix(l, dpkgSettingUp); ok {
			n, _, _ := strings.Cut(rest, " ")
			if samePackage(n, pkg) {
				start = i
			}
			// Another package's step began here: pkg's output, if it was
			// not set up, starts after it.
			break
		}
		if rest, ok := strings.CutPrefix(l, dpkgDepProblems); ok && samePackage(strings.TrimSuffix(rest, ":"), pkg) {
			start = i
			break
		}
		if strings.HasPrefix(l, dpkgErrorPrefix) || strings.HasPrefix(l, dpkgErrorsEnd) {
			break
		}
	}
	end := errAt + 1
	for end < len(lines) && !isDpkgStep(lines[end]) && !strings.HasPrefix(lines[end], "dpkg: ") {
		end++
	}
	// dpkg separates a dependency problem from what follows with an
	// empty line.
	for end > errAt+1 && strings.TrimSpace(lines[end-1]) == "" {
		end--
	}
	return lines[start:end]
}

// dpkgErrorPackage reads the package out of "dpkg: error processing
// package PKG (--configure):".
func dpkgErrorPackage(l string) (string, bool) {
	rest, ok := strings.CutPrefix(l, dpkgErrorPrefix)
	if !ok {
		return "", false
	}
	n, _, ok := strings.Cut(rest, " (")
	return n, ok
}

// isDpkgStep tells a line with which dpkg starts its next step.
func isDpkgStep(l string) bool {
	return strings.HasPrefix(l, dpkgSettingUp) || strings.HasPrefix(l, dpkgTriggers) ||
		l == dpkgErrorsEnd || strings.HasPrefix(l, preinstMarker)
}

// samePackage compares package names as dpkg prints them, with or
// without the ":ARCH" it adds to Multi-Arch: same packages.
func samePackage(a, b string) bool {
	if a == b {
		return true
	}
	a, _, _ = strings.Cut(a, ":")
	b, _, _ = strings.Cut(b, ":")
	return a == b
}

// elide keeps at most n lines: the first and the last ones, with a line
// that says how many were left out between them.
func elide(lines []string, n int) []string {
	if len(lines) <= n {
		return lines
	}
	head := (n - 1) / 2
	tail := n - 1 - head
	out := append([]string{}, lines[:head]...)
	out = append(out, fmt.Sprintf("[... %d lines left out: the full log has them ...]", len(lines)-head-tail))
	return append(out, lines[len(lines)-tail:]...)
}
