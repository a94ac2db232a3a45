package main

import (
	"fmt"
	"sort"
	"strings"

	"jailmgr/conf"
)

// schroot's command line is parsed by Boost.Program_options with its Unix
// style, which cobra cannot imitate: options are recognised anywhere
// before "--" (so "schroot -c x ls -l" lists chroots), long options may be
// abbreviated to any unambiguous prefix, short flags stick together ("-bq")
// and take the rest of the token as a value ("-cNAME"), a value may be the
// next token unless that token is exactly a known short option, and an
// option given twice is an error unless it collects values (-c, -o).
// schrootParse does exactly that, with Boost's error messages, then
// schroot's own checks (one action at most, what each action allows).

// schrootOption is one option of schroot 1.6.
type schrootOption struct {
	long  string
	short byte
	value bool // takes a value
	multi bool // may be given more than once, collecting values
	group string
	help  string
}

// schrootOptionTable is schroot 1.6's options, in its --help order.
var schrootOptionTable = []schrootOption{
	{long: "help", short: 'h', group: "Actions", help: "Show help options"},
	{long: "version", short: 'V', group: "Actions", help: "Print version information"},
	{long: "list", short: 'l', group: "Actions", help: "List available chroots"},
	{long: "info", short: 'i', group: "Actions", help: "Show information about selected chroots"},
	{long: "config", group: "Actions", help: "Dump configuration of selected chroots"},
	{long: "location", group: "Actions", help: "Print location of selected chroots"},
	{long: "quiet", short: 'q', group: "General options", help: "Show less output"},
	{long: "verbose", short: 'v', group: "General options", help: "Show more output"},
	{long: "chroot", short: 'c', value: true, multi: true, group: "Chroot selection", help: "Use specified chroot"},
	{long: "all", short: 'a', group: "Chroot selection", help: "Select all chroots and active sessions"},
	{long: "all-chroots", group: "Chroot selection", help: "Select all chroots"},
	{long: "all-sessions", group: "Chroot selection", help: "Select all active sessions"},
	{long: "all-source-chroots", group: "Chroot selection", help: "Select all source chroots"},
	{long: "exclude-aliases", group: "Chroot selection", help: "Do not include aliases"},
	{long: "directory", short: 'd', value: true, group: "Chroot environment", help: "Directory to use"},
	{long: "shell", short: 's', value: true, group: "Chroot environment", help: "Shell to use as login shell"},
	{long: "user", short: 'u', value: true, group: "Chroot environment", help: "Username (default current user)"},
	{long: "preserve-environment", short: 'p', group: "Chroot environment", help: "Preserve user environment"},
	{long: "option", short: 'o', value: true, multi: true, group: "Chroot environment", help: "Set option"},
	{long: "automatic-session", group: "Session actions", help: "Begin, run and end a session automatically (default)"},
	{long: "begin-session", short: 'b', group: "Session actions", help: "Begin a session; returns a session ID"},
	{long: "recover-session", group: "Session actions", help: "Recover an existing session"},
	{long: "run-session", short: 'r', group: "Session actions", help: "Run an existing session"},
	{long: "end-session", short: 'e', group: "Session actions", help: "End an existing session"},
	{long: "session-name", short: 'n', value: true, group: "Session options", help: "Session name (defaults to an automatically generated name)"},
	{long: "force", short: 'f', group: "Session options", help: "Force operation, even if it fails"},
	// Hidden, as in schroot.
	{long: "debug", value: true},
}

// The actions of schroot 1.6.
const (
	actionHelp     = "help"
	actionVersion  = "version"
	actionList     = "list"
	actionInfo     = "info"
	actionConfig   = "config"
	actionLocation = "location"
	actionAuto     = "session_auto"
	actionBegin    = "session_begin"
	actionRecover  = "session_recover"
	actionRun      = "session_run"
	actionEnd      = "session_end"
)

// schrootOptions is a parsed command line.
type schrootOptions struct {
	action    string
	chroots   []string
	command   []string
	directory string
	shell     string
	user      string
	options   []string
	debug     string
	// set records which options were given.
	set map[string]bool

	preserve, quiet, verbose, force                          bool
	all, allChroots, allSessions, allSources, excludeAliases bool
	sessionName                                              string

	// loadChroots and loadSessions say which namespaces the action reads.
	loadChroots, loadSessions bool
	// warnings are schroot's option warnings: "W: text" then "I: text".
	warnings [][2]string
}

// schrootUsageError is an error of schroot's own option checks: printed
// with a hint to run --help. Boost's parse errors are plain errors.
type schrootUsageError struct{ msg string }

func (e schrootUsageError) Error() string { return e.msg }

// parseSchrootArgs reads a command line as Boost.Program_options does.
func parseSchrootArgs(args []string) (*schrootOptions, error) {
	o := &schrootOptions{set: map[string]bool{}}
	values := map[string][]string{}
	var positional []string
	give := func(opt *schrootOption, value string) error {
		if o.set[opt.long] && !opt.multi {
			return fmt.Errorf("option '--%s' cannot be specified more than once", opt.long)
		}
		o.set[opt.long] = true
		if opt.value {
			values[opt.long] = append(values[opt.long], value)
		}
		return nil
	}
	// next takes the following token as a value, unless it is exactly a
	// known short option, which Boost reads as the value being missing.
	next := func(i *int, opt *schrootOption) (string, error) {
		if *i+1 >= len(args) {
			return "", fmt.Errorf("the required argument for option '--%s' is missing", opt.long)
		}
		tok := args[*i+1]
		if len(tok) == 2 && tok[0] == '-' && shortOption(tok[1]) != nil {
			return "", fmt.Errorf("the required argument for option '--%s' is missing", opt.long)
		}
		*i++
		return tok, nil
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			positional = append(positional, args[i+1:]...)
			i = len(args)
		case strings.HasPrefix(a, "--"):
			name, value, hasValue := strings.Cut(a[2:], "=")
			opt, err := longOption(name, a)
			if err != nil {
				return nil, err
			}
			switch {
			case !opt.value && hasValue:
				return nil, fmt.Errorf("option '--%s' does not take any arguments", opt.long)
			case opt.value && hasValue && value == "":
				return nil, fmt.Errorf("the argument for option '--%s' should follow immediately after the equal sign", opt.long)
			case opt.value && !hasValue:
				if value, err = next(&i, opt); err != nil {
					return nil, err
				}
			}
			if err := give(opt, value); err != nil {
				return nil, err
			}
		case len(a) > 1 && a[0] == '-':
			for j := 1; j < len(a); j++ {
				opt := shortOption(a[j])
				if opt == nil {
					return nil, fmt.Errorf("unrecognised option '%s'", a)
				}
				value := ""
				if opt.value {
					if j+1 < len(a) {
						value = a[j+1:]
					} else {
						var err error
						if value, err = next(&i, opt); err != nil {
							return nil, err
						}
					}
					j = len(a)
				}
				if err := give(opt, value); err != nil {
					return nil, err
				}
			}
		default:
			positional = append(positional, a)
		}
	}
	o.chroots, o.options, o.command = values["chroot"], values["option"], positional
	first := func(k string) string {
		if v := values[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	o.directory, o.shell, o.user, o.sessionName = first("directory"), first("shell"), first("user"), first("session-name")
	o.debug = first("debug")
	if err := o.check(); err != nil {
		return nil, err
	}
	return o, nil
}

// longOption finds an option by its long name or an unambiguous prefix.
func longOption(name, token string) (*schrootOption, error) {
	var matches []*schrootOption
	for i := range schrootOptionTable {
		opt := &schrootOptionTable[i]
		if opt.long == name {
			return opt, nil
		}
		if name != "" && strings.HasPrefix(opt.long, name) {
			matches = append(matches, opt)
		}
	}
	switch len(matches) {
	case 0:
		return nil, fmt.Errorf("unrecognised option '%s'", token)
	case 1:
		return matches[0], nil
	}
	names := make([]string, len(matches))
	for i, m := range matches {
		names[i] = "'--" + m.long + "'"
	}
	sort.Strings(names)
	list := strings.Join(names[:len(names)-1], ", ") + ", and " + names[len(names)-1]
	if len(names) == 2 {
		list = names[0] + ", and " + names[1]
	}
	return nil, fmt.Errorf("option '--%s' is ambiguous and matches %s", name, list)
}

func shortOption(c byte) *schrootOption {
	for i := range schrootOptionTable {
		if schrootOptionTable[i].short == c {
			return &schrootOptionTable[i]
		}
	}
	return nil
}

// check applies schroot 1.6's option checks (options_base::check_options
// and check_actions): which action, and what it may be combined with.
func (o *schrootOptions) check() error {
	setAction := func(a string) error {
		if o.action != "" {
			return schrootUsageError{"Only one action may be specified"}
		}
		o.action = a
		return nil
	}
	for _, c := range []struct{ option, action string }{
		{"help", actionHelp}, {"version", actionVersion}, {"list", actionList}, {"info", actionInfo},
		{"config", actionConfig}, {"location", actionLocation}, {"automatic-session", actionAuto},
		{"begin-session", actionBegin}, {"recover-session", actionRecover}, {"run-session", actionRun},
		{"end-session", actionEnd},
	} {
		if o.set[c.option] {
			if err := setAction(c.action); err != nil {
				return err
			}
		}
	}
	if o.action == "" {
		o.action = actionAuto
	}
	switch o.debug {
	case "", "none", "notice", "info", "warning", "critical":
		// Accepted; jailmgr has no debug messages to print.
	default:
		return schrootUsageError{"Invalid debug level"}
	}
	o.quiet, o.verbose, o.preserve, o.force = o.set["quiet"], o.set["verbose"], o.set["preserve-environment"], o.set["force"]
	o.all, o.allChroots, o.allSessions, o.allSources = o.set["all"], o.set["all-chroots"], o.set["all-sessions"], o.set["all-source-chroots"]
	o.excludeAliases = o.set["exclude-aliases"]
	if o.all {
		o.allChroots, o.allSessions, o.allSources = true, true, true
	}
	if o.quiet && o.verbose {
		o.warnings = append(o.warnings, [2]string{"--quiet and --verbose may not be used at the same time", "Using verbose output"})
		o.quiet = false
	}
	if len(o.chroots) > 0 && o.allUsed() {
		o.warnings = append(o.warnings, [2]string{"--chroot and --all may not be used at the same time", "Using --chroots only"})
		o.all, o.allChroots, o.allSessions, o.allSources = false, false, false, false
	}
	switch o.action {
	case actionAuto:
		o.loadChroots = true
		o.all, o.allSessions = false, false
		if len(o.chroots) == 0 && !o.allUsed() {
			o.chroots = []string{"default"}
		}
	case actionBegin:
		o.loadChroots = true
		if len(o.chroots) != 1 || o.allUsed() {
			return schrootUsageError{"Exactly one chroot must be specified when beginning a session"}
		}
	case actionRecover, actionRun, actionEnd:
		o.loadChroots, o.loadSessions = true, true
		if o.sessionName != "" {
			return schrootUsageError{"--session-name is not permitted for the specified action; did you mean to use --chroot?"}
		}
	case actionHelp, actionVersion:
		o.all, o.allChroots, o.allSessions, o.allSources = false, false, false, false
	default: // list, info, location, config
		if len(o.chroots) > 0 {
			o.loadChroots, o.loadSessions = true, true
		} else if !o.allUsed() {
			o.allChroots, o.loadChroots = true, true
			if o.action == actionList || o.action == actionInfo {
				o.allSources = true
			}
		}
		if o.allChroots || o.allSources {
			o.loadChroots = true
		}
		if o.allSessions {
			o.loadChroots, o.loadSessions = true, true
		}
	}
	if o.set["session-name"] && o.action != actionBegin {
		return schrootUsageError{"--session-name is not permitted for the specified action"}
	}
	if o.set["session-name"] && !conf.ValidSchrootName(o.sessionName) {
		return schrootUsageError{"Invalid session name"}
	}
	return nil
}

func (o *schrootOptions) allUsed() bool {
	return o.all || o.allChroots || o.allSessions || o.allSources
}

// schrootHelp is schroot 1.6's --help, option for option.
func schrootHelp(prog string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Usage:\n  %s  [OPTION…] [COMMAND] — run command or shell in a chroot\n", prog)
	group := ""
	for _, opt := range schrootOptionTable {
		if opt.group == "" {
			continue
		}
		if opt.group != group {
			group = opt.group
			fmt.Fprintf(&b, "\n%s:\n", group)
		}
		name := "--" + opt.long
		if opt.short != 0 {
			name = fmt.Sprintf("-%c [ --%s ]", opt.short, opt.long)
		}
		if opt.value {
			name += " arg"
		}
		lines := wrapHelp(opt.help, 46)
		fmt.Fprintf(&b, "  %-32s%s\n", name, lines[0])
		for _, l := range lines[1:] {
			fmt.Fprintf(&b, "%34s%s\n", "", l)
		}
	}
	return b.String()
}

// wrapHelp breaks a description as Boost does at its default width,
// leaving the space at the break on the first line.
func wrapHelp(text string, width int) []string {
	var lines []string
	for len(text) > width {
		cut := strings.LastIndexByte(text[:width], ' ')
		if cut <= 0 {
			break
		}
		lines = append(lines, text[:cut+1])
		text = text[cut+1:]
	}
	return append(lines, text)
}
