package session

// This file and the others without the !jailmgr_init build tag make the
// session init, which is also built alone as the lean jailmgr-init (see
// cmd/jailmgr-init): they must not reach conf/, store/ or the bootstrap.

// The hidden first arguments of jailmgr's internal roles.
const (
	sessionInitArg = "__jailmgr-session-init"
	monitorArg     = "__jailmgr-session-monitor"
	execArg        = "__jailmgr-exec"
	buildArg       = "__jailmgr-build" // prints the build stamp (doctor)
)

// User is the person a session runs commands for.
type User struct {
	Name   string `json:"name"`
	UID    int    `json:"uid"`
	GID    int    `json:"gid"`
	Groups []int  `json:"groups,omitempty"`
	// GroupNames are the names of GID and Groups, for access checks.
	GroupNames []string `json:"group_names,omitempty"`
	// PrimaryGroup is the name of GID.
	PrimaryGroup string `json:"primary_group,omitempty"`
	Home         string `json:"home"`
	Shell        string `json:"shell"`
	// Passwd and Group are the user's lines of the host's /etc/passwd and
	// /etc/group, copied into the jail so that the user exists there.
	Passwd string   `json:"passwd"`
	Group  []string `json:"group,omitempty"`
}

// initConfig is what the session init reads from spec.json in the state
// folder: the parts of the jail it sets up inside the namespaces.
type initConfig struct {
	Root     string      `json:"root"`
	Mounts   []string    `json:"mounts"`
	Binds    []bindMount `json:"binds,omitempty"`
	Hostname string      `json:"hostname"`
	Network  string      `json:"network"`
	Seccomp  string      `json:"seccomp"`
	// SeccompProfile is the JSON profile read from the host at Begin: the
	// path means nothing inside the jail.
	SeccompProfile []byte        `json:"seccomp_profile,omitempty"`
	Capabilities   []string      `json:"capabilities"`
	User           User          `json:"user"`
	IdleTimeout    int64         `json:"idle_timeout_ns,omitempty"`
	MaxLifetime    int64         `json:"max_lifetime_ns,omitempty"`
	Files          []copiedFile  `json:"files,omitempty"`
	Limits         sessionLimits `json:"limits"`
	// Personality is the execution domain of commands (personality(2)),
	// -1 for the kernel's default.
	Personality int64 `json:"personality"`
	// Build is the build stamp of the jailmgr that wrote this: a separate
	// jailmgr-init only serves its own build.
	Build string `json:"build,omitempty"`
}

// buildStamp is set, to the same value in jailmgr and jailmgr-init, by
// 'make build' (-X jailmgr/session.buildStamp=...). A jailmgr without one
// runs its sessions' inits itself.
var buildStamp string

type sessionLimits struct {
	Memory int64   `json:"memory,omitempty"`
	CPUs   float64 `json:"cpus,omitempty"`
	Pids   int     `json:"pids,omitempty"`
}

// copiedFile is a host file copied into the jail at setup (resolv.conf).
type copiedFile struct {
	Path string `json:"path"`
	Data []byte `json:"data"`
}

// bindMount is one bind of the jail (conf.Bind, as the init reads it).
type bindMount struct {
	Source   string `json:"source"`
	Target   string `json:"target"`
	ReadOnly bool   `json:"read_only,omitempty"`
}
