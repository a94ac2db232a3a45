// Package ldso finds the files the dynamic loader maps to start an ELF
// executable: its interpreter (PT_INTERP) and the closure of its DT_NEEDED
// libraries, looked up as glibc's ld.so looks them up. It reads the files
// with debug/elf and runs nothing: ldd runs the loader on the binary, and
// so executes code of the binary's choosing.
//
// A library is looked for, in order, in the DT_RPATH of the object that
// needs it and of the objects that loaded that one up to the executable
// (only while the needing object has no DT_RUNPATH), in its own DT_RUNPATH,
// in the folders of /etc/ld.so.conf and its includes (unless the object was
// linked with -z nodeflib), then in the loader's default folders. $ORIGIN,
// $LIB and $PLATFORM are expanded. A candidate of another ELF class, byte
// order or machine is passed over, as the loader passes it over. An object
// already loaded (by soname, by a name it was loaded under, or as the same
// file) is not loaded twice.
//
// Limits: LD_LIBRARY_PATH and LD_PRELOAD are not read (a jail's commands
// start with a clean environment). ld.so.cache is not read: the ld.so.conf
// folders it is built from stand in for it. glibc-hwcaps and the legacy
// hwcap subfolders are not searched: the baseline library beside them is
// found, and the loader falls back to it where a subfolder is missing.
// Libraries opened with dlopen — NSS modules, gconv, plugins — are not
// seen: no ELF header names them.
package ldso

import (
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strings"
	"syscall"
)

var (
	// ErrNotELF is wrapped by errors for a file that is not an ELF object.
	ErrNotELF = errors.New("ldso: not an ELF file")
	// ErrNotFound is wrapped by a *MissingError: a needed library is in no
	// folder the loader searches.
	ErrNotFound = errors.New("ldso: library not found")
	// ErrMismatch is wrapped when the objects asked for are of different
	// ELF classes, byte orders or machines.
	ErrMismatch = errors.New("ldso: objects of different ABIs")
	// errMalformed is wrapped for ELF files the loader would refuse.
	errMalformed = errors.New("ldso: malformed ELF file")
)

// Kind says why an object is in a closure.
type Kind int

const (
	// Argument objects are the ones Resolve was asked for.
	Argument Kind = iota
	// Interpreter is a PT_INTERP: the dynamic loader itself.
	Interpreter
	// Library is a DT_NEEDED object.
	Library
)

// Object is one file of a closure.
type Object struct {
	// Path is how the loader names the file: as asked for, as PT_INTERP
	// says, or a search folder joined with the DT_NEEDED name. It may lead
	// through symlinks; Realpath says where.
	Path   string
	Kind   Kind
	Soname string
	Needed []string
	// NeededBy is the object that first needed this library.
	NeededBy *Object
	// ThroughConf is set for a library found in a folder that only
	// ld.so.conf names: the loader finds it there only through
	// ld.so.cache, which a copy needs too.
	ThroughConf bool

	dyn    *dynamic
	origin string
	id     fileID
}

// chain names an object and the ones that needed it, for error messages.
func (o *Object) chain() string {
	s, n := o.Path, 0
	for p := o.NeededBy; p != nil; p = p.NeededBy {
		s += " (needed by " + p.Path
		n++
	}
	return s + strings.Repeat(")", n)
}

// Closure is the set of files that the loader maps to start some objects.
type Closure struct {
	ABI ABI
	// Objects are the arguments in order, then, for each in turn, its
	// interpreter and libraries in load order; each path once.
	Objects []*Object
}

// MissingError reports a needed library that no searched folder holds.
type MissingError struct {
	Object   string   // the object that needs it, with what needed that one
	Library  string   // the DT_NEEDED name
	Searched []string // the folders looked in, in order
	Skipped  []string // candidates passed over, with why
}

func (e *MissingError) Error() string {
	s := fmt.Sprintf("%s needs %s, which is in none of %s", e.Object, e.Library, strings.Join(e.Searched, ", "))
	if strings.Contains(e.Library, "/") {
		s = fmt.Sprintf("%s needs %s, which does not exist", e.Object, e.Library)
	}
	if len(e.Skipped) > 0 {
		s += " (passed over: " + strings.Join(e.Skipped, "; ") + ")"
	}
	return "ldso: " + s
}

func (e *MissingError) Unwrap() error { return ErrNotFound }

type fileID struct{ dev, ino uint64 }

// resolver holds what every lookup of one Resolve shares.
type resolver struct {
	root     string
	abi      ABI
	conf     []string
	defaults []string
	lib      string
}

// Resolve returns the closure of the executables (or libraries) at paths,
// which are absolute paths inside root ("/" for this host; tests pass a
// folder that stands for a host). All must share one ABI.
func Resolve(root string, paths ...string) (*Closure, error) {
	if len(paths) == 0 {
		return nil, errors.New("ldso: no objects to resolve")
	}
	r := &resolver{root: root}
	c := &Closure{}
	var args []*candidate
	for i, p := range paths {
		if !path.IsAbs(p) {
			return nil, fmt.Errorf("ldso: %q is not an absolute path", p)
		}
		exe, err := r.open(p)
		if err != nil {
			return nil, err
		}
		if i == 0 {
			if err := r.init(exe.abi); err != nil {
				return nil, err
			}
			c.ABI = exe.abi
		} else if !c.ABI.same(exe.abi) {
			return nil, fmt.Errorf("%w: %s is %s, %s is %s", ErrMismatch, paths[0], c.ABI, p, exe.abi)
		}
		args = append(args, exe)
	}
	// A shared library asked for (an NSS module, a plugin) is loaded into
	// a process whose loader is an executable's interpreter: the first
	// one among the arguments stands for it.
	var interp string
	for _, a := range args {
		if interp = a.dyn.interp; interp != "" {
			break
		}
	}
	byPath := map[string]*Object{}
	for _, exe := range args {
		objs, err := r.load(exe, interp)
		if err != nil {
			return nil, err
		}
		for _, o := range objs {
			if prev := byPath[o.Path]; prev != nil {
				if o.Kind == Argument {
					prev.Kind = Argument
				}
				continue
			}
			byPath[o.Path] = o
			c.Objects = append(c.Objects, o)
		}
	}
	// Arguments first: a later argument may be an earlier one's library.
	slices.SortStableFunc(c.Objects, func(a, b *Object) int {
		return min(int(a.Kind), 1) - min(int(b.Kind), 1)
	})
	return c, nil
}

func (r *resolver) init(a ABI) error {
	r.abi = a
	var err error
	if r.conf, err = readConf(r.root); err != nil {
		return fmt.Errorf("ldso: %w", err)
	}
	r.defaults = defaultDirs(r.root, a)
	r.lib = libDST(r.root, a)
	return nil
}

// candidate is an opened ELF file.
type candidate struct {
	path string
	abi  ABI
	typ  elf.Type
	dyn  *dynamic
	id   fileID
	real string
}

// open reads an object asked for by the caller: it must exist and be ELF.
func (r *resolver) open(p string) (*candidate, error) {
	c, err := r.read(p)
	if err != nil {
		return nil, err
	}
	if c.typ != elf.ET_EXEC && c.typ != elf.ET_DYN {
		return nil, fmt.Errorf("%w: %s is an ELF %s, not an executable or shared library", ErrNotELF, p, c.typ)
	}
	return c, nil
}

// read opens p inside the root and reads its ELF header and dynamic table.
func (r *resolver) read(p string) (*candidate, error) {
	real, _, err := Realpath(r.root, p)
	if err != nil {
		return nil, fmt.Errorf("ldso: %w", err)
	}
	f, err := os.Open(hostPath(r.root, real))
	if err != nil {
		return nil, fmt.Errorf("ldso: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("ldso: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s is not a regular file", ErrNotELF, p)
	}
	head := make([]byte, 64)
	n, err := io.ReadFull(f, head)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return nil, fmt.Errorf("ldso: read %s: %w", p, err)
	}
	head = head[:n]
	if !isELF(head) {
		if strings.HasPrefix(string(head), "#!") {
			line, _, _ := strings.Cut(string(head[2:]), "\n")
			return nil, fmt.Errorf("%w: %s is a script for %s; pass that interpreter instead (scripts are not copied: their runtime is more than an ELF closure)", ErrNotELF, p, strings.TrimSpace(line))
		}
		return nil, fmt.Errorf("%w: %s", ErrNotELF, p)
	}
	ef, err := elf.NewFile(f)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", errMalformed, p, err)
	}
	dyn, err := readDynamic(ef)
	if err != nil {
		return nil, fmt.Errorf("ldso: read %s: %w", p, err)
	}
	c := &candidate{path: p, abi: abiOf(ef, head), typ: ef.Type, dyn: dyn, real: real}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		c.id = fileID{uint64(sys.Dev), uint64(sys.Ino)}
	}
	return c, nil
}

// loaded is the loader's list of objects of one executable.
type loaded struct {
	objs   []*Object
	byName map[string]*Object
	byID   map[fileID]*Object
}

func (l *loaded) add(o *Object, names ...string) {
	l.objs = append(l.objs, o)
	l.byID[o.id] = o
	for _, n := range append(names, o.Soname) {
		if n != "" {
			l.byName[n] = o
		}
	}
}

// load walks one executable's DT_NEEDED closure breadth first, the order
// in which the loader maps libraries.
func (r *resolver) load(exe *candidate, defaultInterp string) ([]*Object, error) {
	l := &loaded{byName: map[string]*Object{}, byID: map[fileID]*Object{}}
	// $ORIGIN of the executable is the folder of its real path (glibc
	// reads /proc/self/exe); of a library, the folder it was found in.
	top := &Object{Path: exe.path, Kind: Argument, Soname: exe.dyn.soname, Needed: exe.dyn.needed, dyn: exe.dyn, origin: path.Dir(exe.real), id: exe.id}
	l.add(top, exe.path)
	in := exe.dyn.interp
	if in == "" && len(exe.dyn.needed) > 0 {
		in = defaultInterp
	}
	if in != "" {
		c, err := r.read(in)
		if err != nil {
			return nil, fmt.Errorf("%s: interpreter: %w", exe.path, err)
		}
		if !exe.abi.same(c.abi) {
			return nil, fmt.Errorf("%w: %s is %s, its interpreter %s is %s", ErrMismatch, exe.path, exe.abi, in, c.abi)
		}
		// The loader knows itself under its PT_INTERP name and soname.
		if l.byID[c.id] == nil {
			o := &Object{Path: in, Kind: Interpreter, Soname: c.dyn.soname, Needed: c.dyn.needed, dyn: c.dyn, origin: path.Dir(in), id: c.id}
			l.add(o, in)
		}
	}
	for i := 0; i < len(l.objs); i++ {
		o := l.objs[i]
		for _, name := range o.Needed {
			if l.byName[name] != nil {
				continue
			}
			c, viaConf, err := r.find(o, name)
			if err != nil {
				return nil, err
			}
			if prev := l.byID[c.id]; prev != nil {
				l.byName[name] = prev // the same file under another name
				continue
			}
			lib := &Object{Path: c.path, Kind: Library, Soname: c.dyn.soname, Needed: c.dyn.needed, NeededBy: o,
				ThroughConf: viaConf, dyn: c.dyn, origin: path.Dir(c.path), id: c.id}
			l.add(lib, name)
		}
	}
	return l.objs, nil
}

// find looks for the library name that o needs, in the loader's order.
func (r *resolver) find(o *Object, name string) (*candidate, bool, error) {
	miss := &MissingError{Object: o.chain(), Library: name}
	try := func(p string) *candidate {
		c, err := r.read(p)
		switch {
		case errors.Is(err, os.ErrNotExist), errors.Is(err, syscall.ENOTDIR):
			return nil
		case err != nil:
			miss.Skipped = append(miss.Skipped, err.Error())
			return nil
		case !r.abi.same(c.abi):
			miss.Skipped = append(miss.Skipped, p+" is "+c.abi.String())
			return nil
		case c.typ != elf.ET_DYN:
			miss.Skipped = append(miss.Skipped, p+" is not a shared object")
			return nil
		}
		return c
	}
	vars := func(of *Object) map[string]string {
		return map[string]string{"ORIGIN": of.origin, "LIB": r.lib, "PLATFORM": r.abi.info().platform}
	}
	if strings.Contains(name, "/") {
		// A name with a slash is a path, tokens expanded, no search.
		p, ok := expand(name, vars(o))
		if ok && path.IsAbs(p) {
			if c := try(p); c != nil {
				return c, false, nil
			}
		}
		return nil, false, miss
	}
	type dir struct {
		path string
		conf bool
	}
	var dirs []dir
	if !o.dyn.hasRun {
		for l := o; l != nil; l = l.NeededBy {
			for _, d := range searchList(l.dyn.rpath, vars(l)) {
				dirs = append(dirs, dir{d, false})
			}
		}
	}
	for _, d := range searchList(o.dyn.runpath, vars(o)) {
		dirs = append(dirs, dir{d, false})
	}
	if !o.dyn.nodeflib {
		for _, d := range r.conf {
			dirs = append(dirs, dir{d, !slices.Contains(r.defaults, d)})
		}
		for _, d := range r.defaults {
			dirs = append(dirs, dir{d, false})
		}
	}
	seen := map[string]bool{}
	for _, d := range dirs {
		if seen[d.path] {
			continue
		}
		seen[d.path] = true
		miss.Searched = append(miss.Searched, d.path)
		if c := try(join(d.path, name)); c != nil {
			return c, d.conf, nil
		}
	}
	return nil, false, miss
}
