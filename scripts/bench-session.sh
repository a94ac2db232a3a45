#!/usr/bin/env bash
# Session start-up side by side: `jailmgr run IMAGE -- /bin/true` (full
# isolation: namespaces, pivot_root, cgroup, seccomp), `jailmgr session run`
# into an open session, `bwrap --unshare-all`, `schroot -c` and
# `unshare -mpui` + chroot, all on the same root, timed by hyperfine in one
# run. Prints a markdown table (hyperfine's, with its relative column), then a
# second one: `jailmgr run` on bookworm minbase and on the 3.5 times larger
# buildd image, to show that a session's start does not grow with the image;
# a third times the process starts a session command is made of.
#
#   sudo bash scripts/bench-session.sh [MIRROR_URL]
#
# bench.sh calls it with its loopback mirror; alone, the Debian mirror comes
# from the host's apt sources (as in e2e.sh). Environment: SESSION_RUNS (50).

set -euo pipefail
# shellcheck source=scripts/e2e.sh
source "$(dirname "${BASH_SOURCE[0]}")/e2e.sh"

bench_sessions() {
	local mirror=${1:-} work out id root conf rc=0
	[[ -n $mirror ]] || mirror=$(mirror_for bookworm)
	# schroot is installed for the comparison only, and purged again at the
	# end: with the real schroot present, e2e's sbuild check (which runs
	# jailmgr as schroot) refuses to run.
	local purge_schroot=
	command -v schroot >/dev/null 2>&1 || purge_schroot=1
	ensure_tools hyperfine:hyperfine bwrap:bubblewrap schroot:schroot
	JM=$(jailmgr_bin)
	work=$(mktemp -d "${TMPDIR:-/var/tmp}/jailmgr-bench-session.XXXXXX")
	conf=/etc/schroot/chroot.d/jailmgr-bench-$$
	# shellcheck disable=SC2064
	trap "[[ -n \${SESSION_ID:-} ]] && '$JM' --store '$work/s' session end \"\$SESSION_ID\" >/dev/null 2>&1; rm -f '$conf'; safe_rm '$work'; [[ -z '$purge_schroot' ]] || DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq schroot >&2" EXIT
	"$JM" -q --store "$work/s" bootstrap bookworm --variant minbase --mirror "$mirror" --name sessbench >/dev/null
	root=$("$JM" --store "$work/s" image show sessbench --rootfs)
	printf '[jailmgr-bench]\ntype=directory\ndirectory=%s\nusers=root\nroot-users=root\nprofile=minimal\n' "$root" >"$conf"
	# The bootstrap's writes go to disk now, not in the middle of the runs.
	sync
	SESSION_ID=$("$JM" --store "$work/s" session begin sessbench)
	out=$work/sessions.md
	hyperfine -N --style basic --warmup 5 --runs "${SESSION_RUNS:-50}" --export-markdown "$out" \
		-n 'jailmgr run (full isolation)' "$JM --store $work/s run sessbench -- /bin/true" \
		-n 'jailmgr session run' "$JM --store $work/s session run $SESSION_ID -- /bin/true" \
		-n 'bwrap --unshare-all' "bwrap --unshare-all --bind $root / --proc /proc --dev /dev /bin/true" \
		-n 'schroot -c' "schroot -d / -c jailmgr-bench -- /bin/true" \
		-n 'unshare -mpui + chroot' "unshare -mpuif chroot $root /bin/true" >&2 || rc=$?
	cat "$out"
	"$JM" -q --store "$work/s" bootstrap bookworm --variant buildd --mirror "$mirror" --name sessbench-buildd >/dev/null
	sync
	local small big
	small=$(du -sh "$root" | cut -f1)
	big=$(du -sh "$("$JM" --store "$work/s" image show sessbench-buildd --rootfs)" | cut -f1)
	echo
	echo "Session start against image size (minbase $small, buildd $big):"
	echo
	hyperfine -N --style basic --warmup 5 --runs "${SESSION_RUNS:-50}" --export-markdown "$work/size.md" \
		-n "jailmgr run, minbase ($small)" "$JM --store $work/s run sessbench -- /bin/true" \
		-n "jailmgr run, buildd ($big)" "$JM --store $work/s run sessbench-buildd -- /bin/true" >&2 || rc=$?
	cat "$work/size.md"
	bench_floors "$work" || rc=$?
	return "$rc"
}

# bench_floors times what any session command here is made of: a Go
# process's start (a static hello world, built now), jailmgr's start (its
# help), the session init's alone (jailmgr-init, which refuses to run by
# hand at once), and /bin/true on the host. A `session run` is at least one
# Go start plus the command; a `jailmgr run` at least two Go starts plus it.
bench_floors() {
	local work=$1 init go
	init=$(dirname "$JM")/jailmgr-init
	go=$(command -v go || echo /usr/local/go/bin/go)
	mkdir -p "$work/hello"
	printf 'package main\n\nfunc main() {}\n' >"$work/hello/main.go"
	(cd "$work/hello" && CGO_ENABLED=0 GOFLAGS= "$go" build -o hello main.go) || return 1
	echo
	echo "What a session command is made of here (process starts, no session):"
	echo
	local args=(-n 'Go hello world (static)' "$work/hello/hello" -n 'jailmgr --help' "$JM --help")
	[[ -x $init ]] && args+=(-n 'jailmgr-init (exits at once)' "$init")
	args+=(-n '/bin/true' /bin/true)
	hyperfine -N -i --style basic --warmup 5 --runs "${SESSION_RUNS:-50}" --export-markdown "$work/floors.md" "${args[@]}" >&2 || return 1
	cat "$work/floors.md"
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
	bench_sessions "$@"
	exit
fi
