#!/usr/bin/env bash
# jailmgr bootstrap side by side with debootstrap and mmdebstrap.
#
#   sudo make bench                              # or: sudo bash scripts/bench.sh
#   sudo RUNS=5 BENCH_CASES="bookworm:minbase" bash scripts/bench.sh
#
# All three tools read the same loopback caching mirror (scripts/cachemirror),
# warmed by one unmeasured run of each tool per case, so the network is out of
# the numbers. Then RUNS rounds, alternating the tools, each run into a fresh
# folder or store:
#   jailmgr         fresh --store: its package cache is cold, the mirror local
#   jailmgr-warm    one store kept per case: every package already in its cache
#                   (--force: it builds, though its inputs are the same)
#   jailmgr-noop    one store kept per case with its image: the repeated
#                   bootstrap has the same inputs and reuses the image
#   debootstrap     --variant=V SUITE DIR MIRROR
#   mmdebstrap      --variant=V --mode=root SUITE DIR MIRROR (a folder)
# Each run is timed by GNU time: wall seconds, and peak RSS as %M, which is the
# largest maximum RSS of any single process in the tree (getrusage of the
# children), not the sum of the tree.
#
# Prints a table, then the same results as markdown for BENCHMARKS.md (also
# written to $BENCH_OUT when set). Progress goes to stderr.
#
# Environment: RUNS (3), BENCH_CASES ("bookworm:minbase bookworm:buildd
# focal:minbase"), BENCH_CACHE (keep the mirror cache there across runs;
# default a temporary folder), BENCH_TIMEOUT (seconds per run, 1800), BENCH_OUT,
# DEBIAN_MIRROR, UBUNTU_MIRROR (the upstreams; default as in e2e.sh), TMPDIR.

set -euo pipefail

# The mirror, keyring, tool and cleanup helpers are e2e.sh's.
# shellcheck source=scripts/e2e.sh
source "$(dirname "${BASH_SOURCE[0]}")/e2e.sh"

RUNS=${RUNS:-3}
BENCH_CASES=${BENCH_CASES:-"bookworm:minbase bookworm:buildd focal:minbase"}
BENCH_TIMEOUT=${BENCH_TIMEOUT:-1800}
TOOLS=(jailmgr jailmgr-warm jailmgr-noop debootstrap mmdebstrap)

WORK=
MIRROR_PID=

cleanup() {
	local rc=$?
	if [[ -n $MIRROR_PID ]]; then
		kill -TERM "$MIRROR_PID" 2>/dev/null || true
		wait "$MIRROR_PID" 2>/dev/null || true
	fi
	# debootstrap and mmdebstrap may leave proc and sys mounted in a target
	# when they fail: safe_rm unmounts first and refuses to remove otherwise.
	[[ -z $WORK ]] || safe_rm "$WORK" || rc=1
	exit "$rc"
}

# start_mirror UPSTREAM... starts cachemirror and sets MIRROR_BASE.
start_mirror() {
	local cache=${BENCH_CACHE:-$WORK/mirror-cache} args=() u i
	for u in "$@"; do args+=(-upstream "$u"); done
	(cd "$REPO" && go build -trimpath -o "$WORK/cachemirror" ./scripts/cachemirror)
	"$WORK/cachemirror" -listen 127.0.0.1:0 -cache "$cache" "${args[@]}" >"$WORK/mirror.addr" 2>"$WORK/mirror.log" &
	MIRROR_PID=$!
	for ((i = 0; i < 100; i++)); do
		MIRROR_BASE=$(head -n1 "$WORK/mirror.addr" 2>/dev/null || true)
		[[ $MIRROR_BASE == http://* ]] && return 0
		kill -0 "$MIRROR_PID" 2>/dev/null || break
		sleep 0.1
	done
	cat "$WORK/mirror.log" >&2
	die "cachemirror did not start"
}

# run_tool TOOL SUITE VARIANT MIRROR KEYRING RESULT_FILE: one timed run into a
# fresh folder, appending "WALL_S MAXRSS_KIB" to RESULT_FILE on success.
run_tool() {
	local tool=$1 suite=$2 variant=$3 mirror=$4 keyring=$5 result=$6
	local dir cmd=()
	dir=$(mktemp -d "$WORK/run.XXXXXX")
	# --pockets release: debootstrap and mmdebstrap read the release pocket
	# alone, so jailmgr does the same work here (by default it also reads
	# the updates and security pockets).
	case $tool in
	jailmgr)
		cmd=("$JM" --store "$dir/store" bootstrap "$suite" --variant "$variant" --mirror "$mirror" --pockets release ${keyring:+--keyring "$keyring"})
		;;
	jailmgr-warm)
		cmd=("$JM" --store "$WORK/warm-$suite-$variant" bootstrap "$suite" --variant "$variant" --mirror "$mirror" --pockets release ${keyring:+--keyring "$keyring"} --name bench --force)
		;;
	jailmgr-noop)
		# The warm-up run builds the image; every later run reuses it.
		cmd=("$JM" --store "$WORK/noop-$suite-$variant" bootstrap "$suite" --variant "$variant" --mirror "$mirror" --pockets release ${keyring:+--keyring "$keyring"} --name bench)
		;;
	debootstrap)
		cmd=(debootstrap --variant="$variant" ${keyring:+--keyring="$keyring"} "$suite" "$dir/root" "$mirror" "$(debootstrap_script "$suite")")
		;;
	mmdebstrap)
		mkdir "$dir/root"
		cmd=(mmdebstrap --variant="$variant" --mode=root ${keyring:+--keyring="$keyring"} "$suite" "$dir/root" "$mirror")
		;;
	esac
	local rc=0
	/usr/bin/time -f '%e %M' -o "$dir/time" timeout --kill-after=30 "$BENCH_TIMEOUT" "${cmd[@]}" >"$dir/out" 2>"$dir/err" || rc=$?
	if ((rc == 0)); then
		tail -n1 "$dir/time" >>"$result"
		log "  $tool: $(tail -n1 "$dir/time" | awk '{ printf "%.1f s, %.0f MiB", $1, $2 / 1024 }')"
		if [[ $tool == jailmgr-warm && $result != "$WORK/warmup" ]] && ! grep -q 'downloaded 0 bytes' "$dir/err"; then
			log "  note: jailmgr-warm did not report 'downloaded 0 bytes'"
		fi
		if [[ $tool == jailmgr-noop && $result != "$WORK/warmup" ]] && ! grep -q 'has the same inputs: reusing it' "$dir/err"; then
			log "  note: jailmgr-noop did not reuse its image (did the mirror publish meanwhile?)"
		fi
	else
		echo fail >>"$result"
		log "  $tool failed (exit $rc); the end of its stderr:"
		tail -n 20 "$dir/err" | indent
	fi
	# Keep the warm store's package cache, drop the image it just made.
	if [[ $tool == jailmgr-warm && $rc == 0 ]]; then
		"$JM" --store "$WORK/warm-$suite-$variant" image rm "$(cat "$dir/out")" >/dev/null 2>&1 || true
	fi
	safe_rm "$dir"
}

# median: of the numbers on stdin, one a line.
median() {
	sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# summarize RESULTS_DIR prints one tab-separated row per case and tool: case,
# tool, runs ok/total, median wall s, median peak MiB, wall ratio to
# mmdebstrap and to debootstrap.
summarize() {
	local d=$1 c tool f wall mib mm db ok total
	for c in "${CASES[@]}"; do
		mm=$(grep -v fail "$d/$c.mmdebstrap" 2>/dev/null | cut -d' ' -f1 | median)
		db=$(grep -v fail "$d/$c.debootstrap" 2>/dev/null | cut -d' ' -f1 | median)
		for tool in "${TOOLS[@]}"; do
			f=$d/$c.$tool
			total=$(wc -l 2>/dev/null <"$f" || echo 0)
			ok=$(grep -vc fail "$f" 2>/dev/null || true)
			wall=$(grep -v fail "$f" 2>/dev/null | cut -d' ' -f1 | median)
			mib=$(grep -v fail "$f" 2>/dev/null | awk '{ print $2 / 1024 }' | median)
			awk -v c="$c" -v t="$tool" -v ok="$ok" -v n="$total" -v w="$wall" -v m="$mib" -v mm="$mm" -v db="$db" 'BEGIN {
				ratio_mm = (w == "-" || mm == "-" || mm == 0) ? "-" : sprintf("%.2f", w / mm)
				ratio_db = (w == "-" || db == "-" || db == 0) ? "-" : sprintf("%.2f", w / db)
				printf "%s\t%s\t%s/%s\t%s\t%s\t%s\t%s\n", c, t, ok, n,
					(w == "-" ? "-" : sprintf("%.1f", w)), (m == "-" ? "-" : sprintf("%.0f", m)), ratio_mm, ratio_db
			}'
		done
	done
}

# align pads tab-separated columns with spaces.
align() {
	awk -F'\t' '{ for (i = 1; i <= NF; i++) { c[NR, i] = $i; if (length($i) > w[i]) w[i] = length($i) } if (NF > nf) nf = NF }
		END { for (r = 1; r <= NR; r++) { for (i = 1; i <= nf; i++) printf "%-*s%s", w[i], c[r, i], (i < nf ? "  " : "\n") } }'
}

machine() {
	local cpu mem
	cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
	mem=$(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
	echo "- date: $(date -u)"
	echo "- machine: $(nproc) CPUs (${cpu:-unknown model}), $mem memory, kernel $(uname -r)"
	echo "- tools: jailmgr $(cd "$REPO" && git rev-parse --short HEAD 2>/dev/null || echo '(uncommitted)'), debootstrap $(dpkg-query -W -f '${Version}' debootstrap), mmdebstrap $(dpkg-query -W -f '${Version}' mmdebstrap), $(go version | cut -d' ' -f3)"
	echo "- runs: $RUNS per tool and case, after one unmeasured warm-up run of each; all through a loopback caching mirror; storage under $(df --output=source,fstype "$WORK" | tail -n1 | tr -s ' ')"
}

main_bench() {
	[[ $(id -u) == 0 ]] || die "run as root (the tools chroot and mount)"
	ensure_tools debootstrap:debootstrap mmdebstrap:mmdebstrap /usr/bin/time:time xz:xz-utils gpgv:gpgv timeout:coreutils
	command -v curl >/dev/null 2>&1 || command -v wget >/dev/null 2>&1 || ensure_tools curl:curl
	read -ra CASES <<<"$BENCH_CASES"

	WORK=$(mktemp -d "${TMPDIR:-/var/tmp}/jailmgr-bench.XXXXXX")
	trap cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	JM=$(jailmgr_bin)

	# Upstreams for the distributions the cases need, named after them.
	local c suite dists=() ups=()
	for c in "${CASES[@]}"; do
		[[ $c == *:* ]] || die "BENCH_CASES: '$c' is not SUITE:VARIANT"
		dists+=("$(distribution "${c%%:*}")")
	done
	local d
	for d in $(printf '%s\n' "${dists[@]}" | sort -u); do
		for c in "${CASES[@]}"; do
			suite=${c%%:*}
			if [[ $(distribution "$suite") == "$d" ]]; then
				ups+=("$d=$(mirror_for "$suite")")
				break
			fi
		done
	done
	start_mirror "${ups[@]}"
	log "mirror $MIRROR_BASE for ${ups[*]}"

	local results=$WORK/results variant mirror keyring tool r
	mkdir -p "$results"
	for c in "${CASES[@]}"; do
		suite=${c%%:*} variant=${c#*:}
		mirror=$MIRROR_BASE/$(distribution "$suite")
		keyring=
		[[ $(distribution "$suite") == ubuntu ]] && keyring=$(ubuntu_keyring "$MIRROR_BASE/ubuntu" "$WORK")
		log "== $c: warm-up (not measured)"
		for tool in "${TOOLS[@]}"; do
			run_tool "$tool" "$suite" "$variant" "$mirror" "$keyring" "$WORK/warmup"
		done
		for ((r = 1; r <= RUNS; r++)); do
			log "== $c: round $r of $RUNS"
			for tool in "${TOOLS[@]}"; do
				run_tool "$tool" "$suite" "$variant" "$mirror" "$keyring" "$results/$c.$tool"
			done
		done
	done
	# Session start-up (scripts/bench-session.sh), from the same mirror.
	local sessions=""
	if [[ ${BENCH_SESSIONS:-1} != 0 ]]; then
		log "== sessions: jailmgr run / session run, bwrap, schroot, unshare + chroot"
		sessions=$(bash "$(dirname "${BASH_SOURCE[0]}")/bench-session.sh" "$MIRROR_BASE/debian") || log "  the session benchmark failed"
	fi
	# The store: disk of versions, export and import (scripts/bench-store.sh).
	local storebench=""
	if [[ ${BENCH_STORE:-1} != 0 ]]; then
		log "== store: disk of 5 versions, export and import against tar --zstd"
		storebench=$(bash "$(dirname "${BASH_SOURCE[0]}")/bench-store.sh" "$MIRROR_BASE/debian") || log "  the store benchmark failed"
	fi
	kill -TERM "$MIRROR_PID" 2>/dev/null || true
	wait "$MIRROR_PID" || true
	MIRROR_PID=
	tail -n1 "$WORK/mirror.log" >&2

	local rows
	rows=$(summarize "$results")
	{
		echo "wall: median seconds; peak: median of the largest single-process max RSS (GNU time %M, KiB shown as MiB)"
		printf 'case\ttool\truns ok\twall s\tpeak MiB\twall/mmdebstrap\twall/debootstrap\n%s\n' "$rows" | align
	}
	local md
	md=$(
		echo "### Run of $(date -u +%Y-%m-%d)"
		echo
		machine
		echo
		echo "| case | tool | runs ok | wall s (median) | peak RSS MiB (median) | wall / mmdebstrap | wall / debootstrap |"
		echo "|---|---|---|---:|---:|---:|---:|"
		awk -F'\t' '{ printf "| %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7 }' <<<"$rows"
		echo
		echo "Peak RSS is GNU time's %M: the largest maximum resident set of any one process in the tree, not the tree's sum."
		if [[ -n $sessions ]]; then
			echo
			echo "Session start-up, \`/bin/true\` in bookworm minbase (hyperfine, relative to the fastest):"
			echo
			echo "$sessions"
		fi
		if [[ -n $storebench ]]; then
			echo
			echo "$storebench"
		fi
	)
	echo
	echo "----- markdown for BENCHMARKS.md -----"
	echo "$md"
	[[ -z ${BENCH_OUT:-} ]] || echo "$md" >"$BENCH_OUT"
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
	main_bench "$@"
	exit
fi
