#!/usr/bin/env bash
# End-to-end checks of `jailmgr bootstrap` against the real archives.
#
#   sudo bash scripts/e2e.sh                        # every suite x variant
#   sudo E2E_CASES="bookworm:minbase focal:minbase" bash scripts/e2e.sh
#   sudo E2E_JOBS=1 bash scripts/e2e.sh             # one case at a time
#
# The default cases are every suite of scripts/suites.ini with each of the
# variants minbase, buildd and default (8 x 3 = 24 today). Each case
# bootstraps SUITE:VARIANT with the suite's default pockets into a fresh
# temporary store and checks that
#   a. the installed package names are those `debootstrap --print-debs`
#      selects from the same pockets (expected_sets: debootstrap reads the
#      release pocket alone, so it runs on a local archive of the pockets'
#      newest versions); where that differs from what it selects from the
#      release alone (an update that gained a dependency), the log lists the
#      names,
#   b. `dpkg --audit` is silent,
#   h. `jailmgr image verify` passes,
#   c. in a plain chroot over an overlay of the image, `apt-get check` passes
#      and, with /proc and /dev mounted, `apt-get update` and `apt-get install
#      hello` work and `hello` runs,
#   l. /etc/apt/sources.list names the release and each pocket the suite has
#      in suites.ini (SUITE-updates, SUITE-security), and after apt-get update
#      `apt list --upgradable` lists nothing,
#   e. a session of the image runs apart from the host and leaves it as it was.
# Some cases check more:
#   m. (bookworm:minbase, focal:minbase) a bootstrap with `--pockets release`
#      installs exactly debootstrap's set and writes debootstrap's single
#      sources.list line,
#   k, j, f, d, g. (bookworm:minbase) reproducible exports, OCI export and
#      import, access rules, a warm second bootstrap (NAME:2, nothing
#      downloaded) and the image lifecycle beside a running session,
#   i. (bookworm:buildd) sbuild builds hello through jailmgr as schroot.
# A suite whose mirror serves a Release past its Valid-Until (sid on a frozen
# mirror) is found at run time, said in the log, and bootstrapped with
# --ignore-valid-until; debootstrap --print-debs needs nothing for it (it
# checks the signature with gpgv --ignore-time-conflict and never reads
# Valid-Until). A suite the host's debootstrap has no script for (on
# bookworm's: noble, forky) is compared with the script upstream debootstrap
# links it to (gutsy, sid), as the log says.
# It ends with every case, PASS or FAIL and its seconds, then "N passed, M
# failed", and exits non-zero if any case failed.
#
# E2E_JOBS cases run at a time (default 3: the work is mostly network and
# dpkg, and this fits a 2-core machine). Each case has its own store, temp
# folders and session folder (JAILMGR_RUN_DIR), and its log is kept in a file
# and printed whole when it ends. Downloads are shared: the package and index
# caches are content-addressed, so each case starts with hard links to what
# the cases before it fetched. The sbuild check (bookworm:buildd) is the only
# one that touches anything outside its own folders (/usr/bin/schroot,
# /etc/schroot/chroot.d, a builder user, /run/jailmgr/sessions, which its
# setuid jailmgr uses whatever the environment says); no other case uses any
# of them, so it runs beside the others.
# On this 2-core VM the 24 default cases took 17 and 19 minutes (1027 s and
# 1166 s, 2026-12-08, while other test suites kept the load average at 8 to
# 12). bookworm:buildd, whose sbuild builds hello twice (3 to 6 minutes
# each), is the longest case and starts first; the other 23 fill the other
# two slots around it. The four cases that ran one after the other before
# (bookworm minbase and buildd, focal and noble minbase) took about 8
# minutes on the same machine, so the matrix adds about 10 minutes to CI.
#
# No mirror is written here: Debian's comes from the host's apt sources, Ubuntu's
# from debootstrap's own suite script, both at run time; DEBIAN_MIRROR and
# UBUNTU_MIRROR override them. Debian's security pocket is jailmgr's own
# choice (the host's apt sources); DEBIAN_SECURITY_MIRROR passes
# --security-mirror. The Ubuntu keyring is taken from the
# ubuntu-keyring package in the Ubuntu archive itself (see ubuntu_keyring).
#
# Environment: E2E_CASES, E2E_JOBS, DEBIAN_MIRROR, DEBIAN_SECURITY_MIRROR,
# UBUNTU_MIRROR, JAILMGR (the binary; default bin/jailmgr, built if missing),
# TMPDIR (where stores are made).
#
# bench.sh sources this file for its helper functions; main runs only when the
# file is executed.

set -euo pipefail

E2E_VARIANTS="minbase buildd default"
# Started first: the longest cases, so that they do not end the run alone.
E2E_FIRST_CASES="bookworm:buildd bookworm:minbase focal:default jammy:default noble:default"
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEBOOTSTRAP_SCRIPTS=/usr/share/debootstrap/scripts
DEBIAN_KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

log() { printf '%s\n' "$*" >&2; }
indent() { sed 's/^/    /' >&2; }
die() { log "error: $*"; exit 1; }

# --- tools ---------------------------------------------------------------------

# ensure_tools CMD:PACKAGE... installs with apt-get the packages whose command is
# missing (one apt-get update, one install).
ensure_tools() {
	local want=() spec
	for spec in "$@"; do
		command -v "${spec%%:*}" >/dev/null 2>&1 || want+=("${spec#*:}")
	done
	((${#want[@]})) || return 0
	log "installing ${want[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${want[@]}" >&2
}

# download URL FILE, with curl or wget, failing on HTTP errors.
download() {
	if command -v curl >/dev/null 2>&1; then
		curl -fsSL --retry 3 --connect-timeout 30 -o "$2" "$1"
	else
		wget -q --tries=3 --timeout=30 -O "$2" "$1"
	fi
}

# jailmgr_bin prints the jailmgr binary to use, building it if needed.
jailmgr_bin() {
	local bin=${JAILMGR:-$REPO/bin/jailmgr}
	if [[ ! -x $bin ]]; then
		log "building $bin"
		if [[ $bin == "$REPO/bin/jailmgr" ]]; then
			make -C "$REPO" build >&2 # with bin/jailmgr-init
		else
			(cd "$REPO" && CGO_ENABLED=0 go build -trimpath -o "$bin" ./cmd/jailmgr) >&2
		fi
	fi
	printf '%s\n' "$bin"
}

# --- suites and mirrors --------------------------------------------------------

# distribution SUITE prints debian or ubuntu, from the suite table the
# bootstrap itself uses (scripts/suites.ini).
distribution() {
	local d
	d=$(awk -v s="[$1]" '
		/^\[/ { in_s = ($0 == s) }
		in_s && $1 == "distribution" { print $3; exit }' "$REPO/scripts/suites.ini")
	[[ -n $d ]] || die "suite $1 is not in scripts/suites.ini"
	printf '%s\n' "$d"
}

# debian_mirror CODENAME prints the Debian mirror: $DEBIAN_MIRROR, else the URI of
# the host's apt source that carries CODENAME (deb822 .sources first, then the
# one-line sources.list files), else that of any plain Debian suite.
debian_mirror() {
	if [[ -n ${DEBIAN_MIRROR:-} ]]; then
		printf '%s\n' "${DEBIAN_MIRROR%/}"
		return
	fi
	local uri
	uri=$(apt_source_uri "$1" || true)
	[[ -n $uri ]] || uri=$(apt_source_uri "" || true)
	[[ -n $uri ]] || die "no Debian mirror for $1 in the host's apt sources: set DEBIAN_MIRROR=URL"
	printf '%s\n' "${uri%/}"
}

# apt_source_uri SUITE prints the first URI of an enabled `deb` source whose
# suites include SUITE; with SUITE empty, of one whose suites include a name
# without a dash (a release, not -security or -updates).
apt_source_uri() {
	local suite=$1 f
	shopt -s nullglob
	local etc=${APT_ETC:-/etc/apt} # another root for the sources, in tests
	local sources=("$etc"/sources.list.d/*.sources) lists=("$etc"/sources.list "$etc"/sources.list.d/*.list)
	shopt -u nullglob
	for f in "${sources[@]}"; do
		# deb822: paragraphs split by blank lines; fields may fold onto
		# continuation lines that start with a space.
		awk -v want="$suite" '
			function flush(   i, n, s, t, u, ok) {
				if (enabled != "no" && types ~ /(^|[[:space:]])deb([[:space:]]|$)/ && uris != "") {
					n = split(suites, s, /[[:space:]]+/)
					for (i = 1; i <= n; i++)
						if ((want != "" && s[i] == want) || (want == "" && s[i] != "" && s[i] !~ /-/)) ok = 1
					if (ok) { n = split(uris, u, /[[:space:]]+/); for (i = 1; i <= n; i++) if (u[i] != "") { print u[i]; found = 1; exit } }
				}
				types = uris = suites = enabled = ""; last = ""
			}
			/^#/ { next }
			/^[[:space:]]*$/ { flush(); next }
			/^[[:space:]]/ { if (last == "uris") uris = uris " " $0; else if (last == "suites") suites = suites " " $0; next }
			{
				key = tolower($1); sub(/:$/, "", key); val = $0; sub(/^[^:]*:[[:space:]]*/, "", val); last = key
				if (key == "types") types = val
				else if (key == "uris") uris = val
				else if (key == "suites") suites = val
				else if (key == "enabled") enabled = tolower(val)
			}
			END { if (!found) flush() }' "$f" | head -n1 | grep . && return 0
	done
	for f in "${lists[@]}"; do
		[[ -r $f ]] || continue
		# deb [opt=val ...] URI SUITE COMPONENT...
		awk -v want="$suite" '
			$1 != "deb" { next }
			{
				i = 2
				if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
				uri = $i; s = $(i + 1)
				if ((want != "" && s == want) || (want == "" && s != "" && s !~ /-/)) { print uri; exit }
			}' "$f" | head -n1 | grep . && return 0
	done
	return 1
}

# debootstrap_script SUITE prints debootstrap's script for SUITE: its own if it
# has one, else (a suite newer than the host's debootstrap, noble on bookworm's)
# the one its distribution's recent suites link to. debootstrap then takes it as
# its fourth argument.
debootstrap_script() {
	local s=$DEBOOTSTRAP_SCRIPTS/$1
	if [[ -e $s ]]; then
		printf '%s\n' "$s"
		return
	fi
	case $(distribution "$1") in
	ubuntu) s=$DEBOOTSTRAP_SCRIPTS/focal ;;
	*) s=$DEBOOTSTRAP_SCRIPTS/sid ;;
	esac
	[[ -e $s ]] || die "debootstrap has no script for $1 (nor $s)"
	readlink -f "$s"
}

# ubuntu_mirror SUITE prints the Ubuntu mirror: $UBUNTU_MIRROR, else the amd64
# default_mirror of debootstrap's script for SUITE. The script sets it inside a
# case on the architecture and on old suites; the current archive is the line
# that is neither old-releases nor ports.
ubuntu_mirror() {
	if [[ -n ${UBUNTU_MIRROR:-} ]]; then
		printf '%s\n' "${UBUNTU_MIRROR%/}"
		return
	fi
	local m
	m=$(sed -n 's/^[[:space:]]*default_mirror[[:space:]]*//p' "$(debootstrap_script "$1")" |
		grep -v -e old-releases -e ports | head -n1)
	[[ -n $m ]] || die "no default_mirror for amd64 in debootstrap's script for $1: set UBUNTU_MIRROR=URL"
	printf '%s\n' "${m%/}"
}

# mirror_for SUITE prints the mirror of SUITE's distribution.
mirror_for() {
	case $(distribution "$1") in
	debian) debian_mirror "$1" ;;
	ubuntu) ubuntu_mirror "$1" ;;
	*) die "unknown distribution for $1" ;;
	esac
}

# suite_key SUITE KEY prints KEY's value in SUITE's section of suites.ini
# (empty when absent).
suite_key() {
	awk -v s="[$1]" -v k="$2" '
		/^\[/ { in_s = ($0 == s) }
		in_s && $1 == k && $2 == "=" { sub(/^[^=]*=[[:space:]]*/, ""); print; exit }' "$REPO/scripts/suites.ini"
}

# suite_names prints the suites of suites.ini, one a line.
suite_names() {
	sed -n 's/^\[\(.*\)\]$/\1/p' "$REPO/scripts/suites.ini"
}

# default_cases prints the default cases: every suite of suites.ini with
# every variant of E2E_VARIANTS, E2E_FIRST_CASES first, then by variant, so
# that a suite's later variants find its packages in the shared cache.
default_cases() {
	local s v c list=()
	for c in $E2E_FIRST_CASES; do
		[[ -n $(suite_key "${c%%:*}" distribution) ]] && list+=("$c")
	done
	for v in $E2E_VARIANTS; do
		for s in $(suite_names); do
			[[ " ${list[*]} " == *" $s:$v "* ]] || list+=("$s:$v")
		done
	done
	printf '%s\n' "${list[*]}"
}

# suite_pockets SUITE prints the archive suites a default bootstrap of SUITE
# reads, one a line: SUITE, then SUITE-POCKET for each of its pockets in
# suites.ini.
suite_pockets() {
	local p
	printf '%s\n' "$1"
	for p in $(suite_key "$1" pockets | tr ',' ' '); do
		printf '%s-%s\n' "$1" "$p"
	done
}

# security_mirror_for SUITE prints the mirror of SUITE's security pocket as
# jailmgr finds it when no flag says: $DEBIAN_SECURITY_MIRROR, else the
# host's apt source for SUITE-security, else for any Debian -security suite;
# Ubuntu's is the release mirror.
security_mirror_for() {
	if [[ $(distribution "$1") == ubuntu ]]; then
		mirror_for "$1"
		return
	fi
	if [[ -n ${DEBIAN_SECURITY_MIRROR:-} ]]; then
		printf '%s\n' "${DEBIAN_SECURITY_MIRROR%/}"
		return
	fi
	local s uri
	for s in "$1" $(suite_names) stable testing oldstable oldoldstable; do
		[[ $s == "$1" || $(suite_key "$s" distribution) == debian || -z $(suite_key "$s" distribution) ]] || continue
		uri=$(apt_source_uri "$s-security" || true)
		[[ -n $uri ]] && { printf '%s\n' "${uri%/}"; return; }
	done
	return 1
}

# release_expired MIRROR SUITE prints the Valid-Until of MIRROR's
# dists/SUITE/Release and succeeds if that date has passed; it fails when
# the Release has none, is still valid, or cannot be read (then the
# bootstrap says why).
release_expired() {
	local tmp vu
	tmp=$(mktemp)
	if ! download "$1/dists/$2/Release" "$tmp" 2>/dev/null; then
		rm -f "$tmp"
		return 1
	fi
	vu=$(sed -n 's/^Valid-Until:[[:space:]]*//p' "$tmp" | head -n1)
	rm -f "$tmp"
	[[ -n $vu ]] || return 1
	(($(date -u -d "$vu" +%s) < $(date -u +%s))) || return 1
	printf '%s\n' "$vu"
}

# ubuntu_keyring MIRROR DIR puts ubuntu-archive-keyring.gpg into DIR (a Debian
# host has no Ubuntu keyring) and prints its path. It comes from the
# ubuntu-keyring package in focal's main: the package's SHA256 is checked
# against the Packages index, and the InRelease against the extracted key, with
# the index's hash in it. That is consistency, not trust: the key comes from the
# archive it verifies. Good enough for a test; a user installs ubuntu-keyring.
ubuntu_keyring() {
	local mirror=$1 dir=$2 out=$2/ubuntu-archive-keyring.gpg
	if [[ -s $out ]]; then
		printf '%s\n' "$out"
		return
	fi
	local w=$dir/ubuntu-keyring.work
	mkdir -p "$w"
	download "$mirror/dists/focal/main/binary-amd64/Packages.xz" "$w/Packages.xz"
	download "$mirror/dists/focal/InRelease" "$w/InRelease"
	local filename sha
	read -r filename sha < <(xz -dc "$w/Packages.xz" | awk '
		/^Package: / { p = ($2 == "ubuntu-keyring") }
		p && /^Filename: / { f = $2 }
		p && /^SHA256: / { s = $2 }
		/^$/ && p && f != "" { print f, s; exit }
		END { if (p && f != "") print f, s }' | head -n1)
	[[ -n $filename && -n $sha ]] || die "ubuntu-keyring not found in $mirror focal main"
	download "$mirror/$filename" "$w/ubuntu-keyring.deb"
	echo "$sha  $w/ubuntu-keyring.deb" | sha256sum -c --quiet - ||
		die "ubuntu-keyring.deb does not match its SHA256 in the Packages index"
	dpkg-deb -x "$w/ubuntu-keyring.deb" "$w/root"
	[[ -s $w/root/usr/share/keyrings/ubuntu-archive-keyring.gpg ]] ||
		die "ubuntu-keyring.deb has no usr/share/keyrings/ubuntu-archive-keyring.gpg"
	cp "$w/root/usr/share/keyrings/ubuntu-archive-keyring.gpg" "$out.tmp"
	gpgv --keyring "$out.tmp" "$w/InRelease" >/dev/null 2>&1 ||
		die "focal's InRelease does not verify with the extracted Ubuntu keyring"
	grep -q " $(sha256sum <"$w/Packages.xz" | cut -d' ' -f1) .* main/binary-amd64/Packages.xz\$" "$w/InRelease" ||
		die "focal's main Packages.xz is not the one its InRelease lists"
	mv "$out.tmp" "$out"
	rm -rf "$w"
	printf '%s\n' "$out"
}

# keyring_for SUITE KEYDIR prints the keyring to pass explicitly, or nothing when
# the tools' default (the host's Debian keyring) is right.
keyring_for() {
	case $(distribution "$1") in
	ubuntu) ubuntu_keyring "$(ubuntu_mirror "$1")" "$2" ;;
	esac
}

# print_debs SUITE VARIANT MIRROR [KEYRING] prints, one a line and sorted, the
# packages debootstrap would install. KEYRING "none" is --no-check-gpg (an
# archive print_debs_pockets made, whose inputs it verified).
print_debs() {
	local suite=$1 variant=$2 mirror=$3 keyring=${4:-} target script args=()
	target=$(mktemp -d "${TMPDIR:-/tmp}/e2e-printdebs.XXXXXX")
	script=$(debootstrap_script "$suite")
	case $keyring in
	"") ;;
	none) args+=(--no-check-gpg) ;;
	*) args+=(--keyring="$keyring") ;;
	esac
	# debootstrap's own default variant is no --variant at all (it calls it
	# "-" and refuses --variant=default).
	[[ $variant == default ]] || args+=(--variant="$variant")
	# The Ubuntu script adds usrmerge to the set for suites after hirsute only
	# in --print-debs mode (for germinate's seeds, its WHAT_TO_DO check); a real
	# bootstrap never installs it, it makes /usr merged itself. --no-merged-usr
	# drops it from what is printed and changes nothing else here.
	if [[ $(distribution "$suite") == ubuntu ]]; then
		case $suite in
		focal | groovy | hirsute) ;;
		*) args+=(--no-merged-usr) ;;
		esac
	fi
	debootstrap --print-debs "${args[@]}" "$suite" "$target" "$mirror" "$script" 2>"$target.log" |
		tr ' ' '\n' | sed '/^$/d' | sort -u
	local rc=${PIPESTATUS[0]}
	((rc == 0)) || { log "  debootstrap --print-debs failed:"; tail -n 20 "$target.log" | indent; }
	rm -rf --one-file-system "$target" "$target.log"
	return "$rc"
}

# expected_sets SUITE VARIANT MIRROR KEYRING RELEASE_OUT POCKETS_OUT writes
# what `debootstrap --print-debs` selects for SUITE and VARIANT into
# RELEASE_OUT, as debootstrap does, from the release pocket alone; and into
# POCKETS_OUT what it selects from all of SUITE's pockets (suite_pockets) at
# once, as the default bootstrap reads them. debootstrap cannot read them
# so itself (its --extra-suites takes every version's dependencies, from
# one mirror): it runs on file:// archives of one suite made here from the
# pockets' indexes (each checked against its InRelease, checked with gpgv),
# the second holding of each package the newest version across the
# pockets, of two equal ones the earlier pocket's, as jailmgr and apt
# choose. The archives keep only the fields debootstrap reads, which makes
# it several times faster.
expected_sets() {
	local suite=$1 variant=$2 mirror=$3 keyring=$4 rel_out=$5 pk_out=$6 dir arch comps p m c n=0 rc=0
	arch=$(dpkg --print-architecture)
	comps=$(suite_key "$suite" components | tr ',' ' ')
	dir=$(mktemp -d "${TMPDIR:-/tmp}/e2e-expected.XXXXXX")
	for p in $(suite_pockets "$suite"); do
		m=$mirror
		if [[ $p == *-security ]] && ! m=$(security_mirror_for "$suite"); then
			log "  no security mirror for $p in the host's apt sources: set DEBIAN_SECURITY_MIRROR"
			rc=1
			break
		fi
		if ! download "$m/dists/$p/InRelease" "$dir/$n.InRelease" ||
			! gpgv --keyring "${keyring:-$DEBIAN_KEYRING}" "$dir/$n.InRelease" >/dev/null 2>&1; then
			log "  $m/dists/$p/InRelease: cannot download it, or it does not verify"
			rc=1
			break
		fi
		for c in $comps; do
			if ! download "$m/dists/$p/$c/binary-$arch/Packages.xz" "$dir/$n.$c.xz" ||
				! grep -Eq "^ $(sha256sum <"$dir/$n.$c.xz" | cut -d' ' -f1) +[0-9]+ $c/binary-$arch/Packages.xz\$" "$dir/$n.InRelease"; then
				log "  $m/dists/$p/$c/binary-$arch/Packages.xz: cannot download it, or its InRelease does not list it"
				rc=1
				break 2
			fi
		done
		n=$((n + 1))
	done
	if ((rc == 0)); then
		local_archive "$dir" 1 "$suite" "$arch" "$comps" "$dir/release" &&
			print_debs "$suite" "$variant" "file://$dir/release" none >"$rel_out" || rc=1
	fi
	if ((rc == 0 && n > 1)); then
		local_archive "$dir" "$n" "$suite" "$arch" "$comps" "$dir/pockets" &&
			print_debs "$suite" "$variant" "file://$dir/pockets" none >"$pk_out" || rc=1
	elif ((rc == 0)); then
		cp "$rel_out" "$pk_out"
	fi
	rm -rf --one-file-system "$dir"
	return "$rc"
}

# VERCMP_AWK defines vercmp(a, b) for awk (run with LC_ALL=C): less than,
# equal to or greater than 0 as Debian version a sorts before, with or after
# b, by dpkg's rules (epoch, then upstream version and revision, each by
# verrevcmp: ~ before anything, letters before other characters, digit runs
# as numbers). One awk for thousands of comparisons that dpkg
# --compare-versions would take a process each for.
VERCMP_AWK='
function vc_order(c) {
	if (c == "" || c ~ /[0-9]/) return 0
	if (c ~ /[A-Za-z]/) return VC_ORD[c]
	if (c == "~") return -1
	return VC_ORD[c] + 256
}
function vc_revcmp(a, b,   ac, bc, da, db) {
	while (a != "" || b != "") {
		while ((a != "" && substr(a, 1, 1) !~ /[0-9]/) || (b != "" && substr(b, 1, 1) !~ /[0-9]/)) {
			ac = vc_order(substr(a, 1, 1)); bc = vc_order(substr(b, 1, 1))
			if (ac != bc) return ac - bc
			a = substr(a, 2); b = substr(b, 2)
		}
		match(a, /^[0-9]*/); da = substr(a, 1, RLENGTH); a = substr(a, RLENGTH + 1)
		match(b, /^[0-9]*/); db = substr(b, 1, RLENGTH); b = substr(b, RLENGTH + 1)
		sub(/^0+/, "", da); sub(/^0+/, "", db)
		if (length(da) != length(db)) return length(da) - length(db)
		if (da != db) return da < db ? -1 : 1
	}
	return 0
}
function vercmp(a, b,   ea, eb, ra, rb, r) {
	ea = eb = 0; ra = rb = ""
	if (index(a, ":")) { ea = substr(a, 1, index(a, ":") - 1) + 0; a = substr(a, index(a, ":") + 1) }
	if (index(b, ":")) { eb = substr(b, 1, index(b, ":") - 1) + 0; b = substr(b, index(b, ":") + 1) }
	if (ea != eb) return ea < eb ? -1 : 1
	if (match(a, /-[^-]*$/)) { ra = substr(a, RSTART + 1); a = substr(a, 1, RSTART - 1) }
	if (match(b, /-[^-]*$/)) { rb = substr(b, RSTART + 1); b = substr(b, 1, RSTART - 1) }
	r = vc_revcmp(a, b)
	return r ? r : vc_revcmp(ra, rb)
}
BEGIN { for (i = 1; i < 256; i++) VC_ORD[sprintf("%c", i)] = i }
'

# local_archive DIR K SUITE ARCH COMPONENTS OUT makes OUT a one-suite archive
# (dists/SUITE/Release and each component's Packages) from the first K
# pockets' indexes DIR/I.COMPONENT.xz, I from 0 in pocket order: of each
# package the stanza of the newest version, the earliest of equals, with
# only the fields debootstrap reads.
local_archive() {
	local dir=$1 k=$2 suite=$3 arch=$4 comps=$5 out=$6 c j rel
	mkdir -p "$out/dists/$suite"
	rel=$(printf 'Suite: %s\nCodename: %s\nArchitectures: %s\nComponents: %s\nSHA256:' "$suite" "$suite" "$arch" "$comps")
	for c in $comps; do
		for ((j = 0; j < k; j++)); do
			xz -dc "$dir/$j.$c.xz" | awk -v i="$j" 'BEGIN { RS = ""; FS = "\n" }
				{ p = v = ""
				  for (f = 1; f <= NF; f++) {
					if ($f ~ /^Package:/) { p = $f; sub(/^Package:[ \t]*/, "", p) }
					else if ($f ~ /^Version:/) { v = $f; sub(/^Version:[ \t]*/, "", v) }
				  }
				  if (p != "") print p, v, i }'
		done | sort -k1,1 -k3,3n >"$dir/versions" || return 1
		# Of each name, the newest version; of equals, the first pocket's.
		LC_ALL=C awk "$VERCMP_AWK"'
			$1 != name { if (name != "") print name, best, bi; name = $1; best = $2; bi = $3; next }
			vercmp($2, best) > 0 { best = $2; bi = $3 }
			END { if (name != "") print name, best, bi }' "$dir/versions" >"$dir/winners" || return 1
		local pk=dists/$suite/$c/binary-$arch/Packages
		mkdir -p "$out/${pk%/*}"
		for ((j = 0; j < k; j++)); do
			awk -v i="$j" '$3 == i { print $1, $2 }' "$dir/winners" >"$dir/keep"
			xz -dc "$dir/$j.$c.xz" | awk -v keep="$dir/keep" '
				BEGIN { while ((getline l < keep) > 0) want[l] = 1; RS = ""; FS = "\n" }
				{ s = p = v = ""
				  for (f = 1; f <= NF; f++) {
					if ($f ~ /^Package:/) { p = $f; sub(/^Package:[ \t]*/, "", p) }
					else if ($f ~ /^Version:/) { v = $f; sub(/^Version:[ \t]*/, "", v) }
					if ($f ~ /^(Package|Version|Architecture|Priority|Essential|Depends|Pre-Depends|Provides|Filename|Size|SHA256|MD5sum):/) s = s $f "\n"
				  }
				  if (want[p " " v]) { print s; want[p " " v] = 0 } }'
		done >"$out/$pk" || return 1
		rel+=$(printf '\n %s %s %s' "$(sha256sum <"$out/$pk" | cut -d' ' -f1)" "$(stat -c %s "$out/$pk")" "$c/binary-$arch/Packages")
	done
	printf '%s\n' "$rel" >"$out/dists/$suite/Release"
	rm -f "$dir/versions" "$dir/winners" "$dir/keep"
}

# --- mounts and cleanup --------------------------------------------------------

# mounts_below DIR lists the mount points at or below DIR (from mountinfo; its
# octal escapes of spaces and the like are left as they are, which only matters
# for names we do not make).
mounts_below() {
	local d
	d=$(readlink -f "$1")
	awk -v d="$d" '$5 == d || index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo
}

# unmount_all DIR unmounts everything at or below DIR, deepest first.
unmount_all() {
	local m
	while read -r m; do
		umount -R "$m" 2>/dev/null || umount -R -l "$m" 2>/dev/null || true
	done < <(mounts_below "$1" | sort -r)
}

# safe_rm DIR removes DIR unless something is still mounted below it.
safe_rm() {
	local dir=$1
	[[ -e $dir ]] || return 0
	unmount_all "$dir"
	if [[ -n $(mounts_below "$dir") ]]; then
		log "refusing to remove $dir: still mounted below it:"
		mounts_below "$dir" >&2
		return 1
	fi
	rm -rf --one-file-system "$dir"
}

# --- one case ------------------------------------------------------------------

in_root() {
	local root=$1
	shift
	env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LC_ALL=C \
		DEBIAN_FRONTEND=noninteractive chroot "$root" "$@"
}

# check_packages ROOTFS EXPECTED_FILE
check_packages() {
	local rootfs=$1 expected=$2 got
	got=$(mktemp)
	# shellcheck disable=SC2016 # dpkg-query's fields, not shell variables
	if ! in_root "$rootfs" dpkg-query -W -f '${db:Status-Status} ${Package}\n' >"$got.all"; then
		log "  dpkg-query failed in the image"
		rm -f "$got" "$got.all"
		return 1
	fi
	awk '$1 == "installed" { print $2 }' "$got.all" | sort -u >"$got"
	local rc=0
	if ! diff -u --label debootstrap --label jailmgr "$expected" "$got" >"$got.diff"; then
		log "  package set differs from debootstrap --print-debs (- only debootstrap, + only jailmgr):"
		grep -E '^[-+][^-+]' "$got.diff" | indent
		rc=1
	fi
	if awk '$1 != "installed" { bad = 1; print "    not installed: " $0 } END { exit !bad }' "$got.all" >&2; then
		rc=1
	fi
	log "  $(wc -l <"$got") packages installed, $(wc -l <"$expected") selected by debootstrap"
	rm -f "$got" "$got.all" "$got.diff"
	return "$rc"
}

check_audit() {
	local out
	if ! out=$(in_root "$1" dpkg --audit 2>&1); then
		log "  dpkg --audit failed: $out"
		return 1
	fi
	if [[ -n $out ]]; then
		log "  dpkg --audit is not silent:"
		indent <<<"$out"
		return 1
	fi
}

# check_apt ROOTFS: apt-get check, then update, install hello and run it with
# /dev and /proc mounted (unmounted again before returning). What `apt list
# --upgradable` printed after the update is left in $CASE_STORE/upgradable
# for check_pockets.
check_apt() {
	local image=$1 out rc=0 ov rootfs
	# A plain chroot, as debootstrap's users use one, over an overlay of
	# the image: a committed image is never written to (export checks).
	ov=$(mktemp -d "$CASE_STORE/apt-check.XXXXXX")
	mkdir "$ov/upper" "$ov/work" "$ov/root"
	mount -t overlay overlay -o "lowerdir=$image,upperdir=$ov/upper,workdir=$ov/work" "$ov/root"
	rootfs=$ov/root
	if ! out=$(in_root "$rootfs" apt-get check 2>&1); then
		log "  apt-get check failed:"
		indent <<<"$out"
		umount "$rootfs"
		return 1
	fi
	# Name resolution inside the chroot.
	cp --remove-destination /etc/resolv.conf "$rootfs/etc/resolv.conf"
	mount --rbind /dev "$rootfs/dev"
	mount --make-rslave "$rootfs/dev"
	mount -t proc proc "$rootfs/proc"
	rm -f "$CASE_STORE/upgradable"
	if ! out=$(in_root "$rootfs" sh -c 'apt-get update && apt list --upgradable >/tmp/e2e-upgradable 2>/dev/null && apt-get install -y hello' 2>&1); then
		log "  apt-get update, apt list --upgradable, apt-get install hello: failed:"
		tail -n 30 <<<"$out" | indent
		log "  apt sources in the image:"
		cat "$rootfs"/etc/apt/sources.list "$rootfs"/etc/apt/sources.list.d/* 2>/dev/null | indent || true
		rc=1
	elif ! out=$(in_root "$rootfs" hello 2>&1) || [[ $out != "Hello, world!" ]]; then
		log "  hello printed: $out"
		rc=1
	fi
	[[ -f $rootfs/tmp/e2e-upgradable ]] && cp "$rootfs/tmp/e2e-upgradable" "$CASE_STORE/upgradable"
	unmount_all "$rootfs"
	safe_rm "$ov"
	return "$rc"
}

# sources_suites ROOTFS prints the suites of the image's deb lines in
# /etc/apt/sources.list, one a line, sorted.
sources_suites() {
	awk '$1 == "deb" { i = 2; if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ } print $(i + 1) }' "$1/etc/apt/sources.list" | sort
}

# check_pockets ROOTFS SUITE: the image's sources.list names the release and
# each pocket the suite has (suite_pockets), and apt found nothing to upgrade
# after its update (check_apt's $CASE_STORE/upgradable).
check_pockets() {
	local rootfs=$1 suite=$2 rc=0 want got
	want=$(suite_pockets "$suite" | sort)
	got=$(sources_suites "$rootfs")
	if [[ $got != "$want" ]]; then
		log "  /etc/apt/sources.list names ${got//$'\n'/ }, want ${want//$'\n'/ }:"
		indent <"$rootfs/etc/apt/sources.list"
		rc=1
	fi
	if [[ ! -f $CASE_STORE/upgradable ]]; then
		log "  no apt list --upgradable output (apt-get update failed above)"
		rc=1
	elif grep -v -e '^Listing' -e '^$' "$CASE_STORE/upgradable" >"$CASE_STORE/upgradable.pkgs"; then
		log "  apt list --upgradable after apt-get update lists $(wc -l <"$CASE_STORE/upgradable.pkgs") packages: the bootstrap missed newer versions in the pockets it read:"
		head -n 20 "$CASE_STORE/upgradable.pkgs" | indent
		rc=1
	fi
	return "$rc"
}

# check_release_pocket STORE NAME SUITE VARIANT MIRROR EXPECTED: a bootstrap
# with --pockets release installs exactly debootstrap's package set, and its
# sources.list is the one line debootstrap writes ("deb MIRROR SUITE
# COMPONENTS"). The bootstrap flags of the case ($CASE_BFLAGS) apply.
check_release_pocket() {
	local store=$1 name=$2-release suite=$3 variant=$4 mirror=$5 expected=$6 ref rootfs rc=0 want
	if [[ $("$JM" bootstrap --help 2>&1) != *--pockets* ]]; then
		log "  this jailmgr has no bootstrap --pockets"
		return 1
	fi
	if ! ref=$("$JM" --store "$store" bootstrap "$suite" --variant "$variant" --mirror "$mirror" "${CASE_BFLAGS[@]}" --pockets release --name "$name" 2>"$store.release.log"); then
		log "  bootstrap --pockets release failed; the end of its stderr:"
		tail -n 30 "$store.release.log" | indent
		return 1
	fi
	rootfs=$("$JM" --store "$store" image show "$ref" --rootfs)
	check_packages "$rootfs" "$expected" || rc=1
	check_audit "$rootfs" || rc=1
	want="deb $mirror $suite $(suite_key "$suite" components | tr ',' ' ' | xargs)"
	if [[ $(cat "$rootfs/etc/apt/sources.list") != "$want" ]]; then
		log "  /etc/apt/sources.list is not debootstrap's '$want':"
		indent <"$rootfs/etc/apt/sources.list"
		rc=1
	fi
	"$JM" -q --store "$store" image rm "$ref" >/dev/null || { log "  image rm $ref failed"; rc=1; }
	return "$rc"
}

# check_warm STORE NAME SUITE VARIANT MIRROR KEYRING: a second bootstrap into
# the same store with --force downloads nothing, becomes NAME:2 with the same
# packages, and the image commands see both versions; a third one without
# --force has NAME:2's inputs, so it reuses NAME:2 (says so, downloads and
# commits nothing, in a few seconds at most). The bootstrap flags of the case
# ($CASE_BFLAGS) apply.
check_warm() {
	local store=$1 name=$2 suite=$3 variant=$4 mirror=$5 keyring=$6 errlog ref rc=0
	errlog=$(mktemp)
	local kflag=()
	[[ -n $keyring ]] && kflag=(--keyring "$keyring")
	local bflags=(bootstrap "$suite" --variant "$variant" --mirror "$mirror" "${kflag[@]}" "${CASE_BFLAGS[@]}" --name "$name")
	if ! ref=$("$JM" --store "$store" "${bflags[@]}" --force 2>"$errlog"); then
		log "  second bootstrap failed:"
		tail -n 30 "$errlog" | indent
		rm -f "$errlog"
		return 1
	fi
	if ! grep -q 'downloaded 0 bytes' "$errlog"; then
		log "  second bootstrap did not report 'downloaded 0 bytes'; its stderr:"
		tail -n 30 "$errlog" | indent
		rc=1
	fi
	if [[ $ref != "$name:2" ]]; then
		log "  second bootstrap printed '$ref', want '$name:2'"
		rc=1
	fi
	local p1 p2
	p1=$("$JM" --store "$store" image show "$name:1" --json | jq -r '.packages[] | "\(.name) \(.version)"' | sort)
	p2=$("$JM" --store "$store" image show "$name:2" --json | jq -r '.packages[] | "\(.name) \(.version)"' | sort)
	if [[ -z $p1 || $p1 != "$p2" ]]; then
		log "  the manifests of $name:1 and $name:2 list different packages (or none)"
		rc=1
	fi
	local n
	n=$("$JM" --store "$store" image list --json | jq --arg n "$name" '[.[] | select(.name == $n)] | length')
	[[ $n == 2 ]] || { log "  image list shows $n versions of $name, want 2"; rc=1; }

	# The same inputs again, without --force: NAME:2 is reused.
	local start=$SECONDS
	if ! ref=$("$JM" --store "$store" "${bflags[@]}" 2>"$errlog"); then
		log "  the repeated bootstrap failed:"
		tail -n 30 "$errlog" | indent
		rc=1
	elif [[ $ref != "$name:2" ]] || ! grep -q "$name:2 has the same inputs: reusing it" "$errlog" || grep -qE 'downloaded|committed ' "$errlog"; then
		log "  the repeated bootstrap printed '$ref', want $name:2 reused with nothing downloaded or committed; its stderr:"
		tail -n 30 "$errlog" | indent
		rc=1
	else
		log "  repeated bootstrap: $name:2 reused in $((SECONDS - start))s"
	fi
	rm -f "$errlog"
	n=$("$JM" --store "$store" image list --json | jq --arg n "$name" '[.[] | select(.name == $n)] | length')
	[[ $n == 2 ]] || { log "  after the repeated bootstrap, image list shows $n versions of $name, want 2"; rc=1; }

	"$JM" --store "$store" image rm "$name:1" >/dev/null 2>&1 || { log "  image rm $name:1 failed"; rc=1; }
	n=$("$JM" --store "$store" image list --json | jq --arg n "$name" '[.[] | select(.name == $n)] | length')
	[[ $n == 1 ]] || { log "  after image rm, image list shows $n versions of $name, want 1"; rc=1; }
	return "$rc"
}

# check_lifecycle STORE NAME: with a session open on NAME (its newest
# version, N), image update --include hello builds N+1 while the session
# keeps running (an image of every pocket's newest packages has nothing to
# upgrade, and an update that changes nothing commits no version), rm
# refuses N while the session lives, gc keeps it for the session and removes
# it after, and rm --force ends a session to remove its version.
check_lifecycle() {
	local store=$1 name=$2 rc=0 out sid from to
	local jm=("$JM" --store "$store")
	from=$("${jm[@]}" image show "$name" --json | jq -r '"\(.name):\(.version)"')
	sid=$("${jm[@]}" session begin "$name") || { log "  session begin $name failed"; return 1; }
	if ! to=$("${jm[@]}" image update --include hello "$name" 2>"$store/update.log"); then
		log "  image update $name failed:"
		tail -n 30 "$store/update.log" | indent
		"${jm[@]}" session end "$sid"
		return 1
	fi
	[[ $to == "$name:$((${from#*:} + 1))" ]] || { log "  image update printed '$to' after $from"; rc=1; }
	[[ $("${jm[@]}" image show "$to" --json | jq -r .parent) == "$from" ]] || { log "  $to does not name $from as its parent"; rc=1; }
	out=$("${jm[@]}" session run "$sid" -- cat /etc/debian_version 2>&1) || { log "  the session on $from stopped working after the update: $out"; rc=1; }
	"${jm[@]}" image verify "$to" >/dev/null || { log "  $to does not verify"; rc=1; }
	"${jm[@]}" image verify "$from" >/dev/null || { log "  $from no longer verifies after the update"; rc=1; }
	if out=$("${jm[@]}" image rm "$from" 2>&1) || [[ $out != *"in use"* ]]; then
		log "  image rm $from did not refuse while a session runs on it: $out"
		rc=1
	fi
	local both one
	both=$(du -sk "$store/images/$name" | cut -f1)
	one=$(du -sk "$store/images/$name/${from#*:}" | cut -f1)
	log "  disk: $from alone ${one} KiB, with $to ${both} KiB (an independent copy would double it)"
	((both < one * 3 / 2)) || { log "  $to shares too little with $from"; rc=1; }
	out=$("${jm[@]}" image gc --keep 1 --json)
	[[ $(jq -r '.kept_in_use | join(" ")' <<<"$out") == "$from" ]] || { log "  gc did not keep $from for its session: $out"; rc=1; }
	"${jm[@]}" session end "$sid" || { log "  session end $sid failed"; rc=1; }
	out=$("${jm[@]}" image gc --keep 1 --json)
	[[ $(jq -r '.removed | join(" ")' <<<"$out") == "$from" ]] || { log "  gc did not remove $from once its session ended: $out"; rc=1; }
	sid=$("${jm[@]}" session begin "$to") || { log "  session begin $to failed"; return 1; }
	if ! out=$("${jm[@]}" image rm --force "$to" 2>&1) || [[ $out != *"ending session $sid"* ]]; then
		log "  image rm --force $to did not end session $sid and remove it: $out"
		rc=1
	fi
	[[ -z $("${jm[@]}" session list --json | jq -r '.[].id') ]] || { log "  a session survived rm --force"; rc=1; }
	return "$rc"
}

# check_export STORE REF: the image's OCI export is accepted by skopeo
# inspect and umoci unpack (whose tree has the same files, modes, owners and
# contents), and importing either export gives a version with the same
# per-file index and the same packages.
check_export() {
	local store=$1 ref=$2 rc=0 work out
	local jm=("$JM" -q --store "$store")
	work=$(mktemp -d "$store/export.XXXXXX")
	"${jm[@]}" image export "$ref" -o "$work/img.tar.zst" || { log "  export --format tar failed"; return 1; }
	"${jm[@]}" image export "$ref" -o "$work/img.oci" --format oci || { log "  export --format oci failed"; return 1; }
	if ! out=$(skopeo inspect "oci-archive:$work/img.oci" 2>&1) || [[ $(jq -r '.Labels["jailmgr.manifest"] | fromjson | .suite' <<<"$out") != "$(jq -r .suite <<<"$("${jm[@]}" image show "$ref" --json)")" ]]; then
		log "  skopeo inspect oci-archive: refused the export, or lost its manifest:"
		printf '%s\n' "$out" | tail -n 5 | indent
		rc=1
	fi
	mkdir "$work/layout"
	tar -xf "$work/img.oci" -C "$work/layout"
	local tag
	tag=$(jq -r '.manifests[0].annotations["org.opencontainers.image.ref.name"]' "$work/layout/index.json")
	if ! out=$(umoci unpack --image "$work/layout:$tag" "$work/bundle" 2>&1); then
		log "  umoci unpack refused the export:"
		printf '%s\n' "$out" | tail -n 5 | indent
		rc=1
	else
		local rootfs
		rootfs=$("${jm[@]}" image show "$ref" --rootfs)
		# Folder times change as umoci writes into them: compare the rest.
		if ! diff <(tree_listing "$rootfs") <(tree_listing "$work/bundle/rootfs") >"$work/umoci.diff"; then
			log "  umoci's tree differs from the image:"
			head -n 10 "$work/umoci.diff" | indent
			rc=1
		fi
	fi
	local f imported
	for f in img.tar.zst img.oci; do
		if ! imported=$("${jm[@]}" image import "$work/$f" --name "e2e-import-${f#img.}" 2>&1); then
			log "  import of the $f export failed: $imported"
			rc=1
			continue
		fi
		out=$("${jm[@]}" image diff "$ref" "$imported" --json)
		if [[ $(jq '[.packages_added, .packages_removed, .packages_changed, .files_added, .files_removed, .files_changed] | map(length) | add' <<<"$out") != 0 ]]; then
			log "  importing the $f export gave $imported, which differs from $ref:"
			jq -c . <<<"$out" | cut -c1-400 | indent
			rc=1
		fi
		"${jm[@]}" image verify "$imported" >/dev/null || { log "  $imported does not verify"; rc=1; }
		"${jm[@]}" image rm "$imported" >/dev/null
	done
	safe_rm "$work"
	return "$rc"
}

# tree_listing DIR: every path with type, mode, owner, size and content hash.
tree_listing() {
	(cd "$1" && find . -mindepth 1 -printf '%p %y %m %U:%G %s %l\n' | sort) &&
		(cd "$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum)
}

# check_repro STORE NAME SUITE VARIANT MIRROR: a second bootstrap of the
# same archive state into another store (its package cache linked from the
# first), with the same SOURCE_DATE_EPOCH and flags ($CASE_BFLAGS), exports
# to the same bytes as NAME:1 of the first.
check_repro() {
	local store=$1 name=$2 suite=$3 variant=$4 mirror=$5 other=$1.repro rc=0 s1 s2
	mkdir -p "$other/cache"
	cp -al "$store/cache/debs" "$other/cache/"
	if ! "$JM" -q --store "$other" bootstrap "$suite" --variant "$variant" --mirror "$mirror" "${CASE_BFLAGS[@]}" --name "$name" >/dev/null 2>"$other.log"; then
		log "  the second bootstrap failed:"
		tail -n 20 "$other.log" | indent
		safe_rm "$other"
		return 1
	fi
	"$JM" -q --store "$store" image export "$name:1" -o "$other.1.tar.zst" &&
		"$JM" -q --store "$other" image export "$name:1" -o "$other.2.tar.zst" || { log "  export failed"; rc=1; }
	s1=$(sha256sum <"$other.1.tar.zst" | cut -d' ' -f1)
	s2=$(sha256sum <"$other.2.tar.zst" | cut -d' ' -f1)
	if [[ $rc == 0 && $s1 != "$s2" ]]; then
		log "  the two exports differ (SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH): $s1 and $s2"
		diff <(zstd -dc "$other.1.tar.zst" | tar -tvv --full-time 2>/dev/null) <(zstd -dc "$other.2.tar.zst" | tar -tvv --full-time 2>/dev/null) | head -n 10 | indent
		rc=1
	elif [[ $rc == 0 ]]; then
		log "  both exports: SHA256 $s1"
	fi
	rm -f "$other.1.tar.zst" "$other.2.tar.zst" "$other.log"
	safe_rm "$other"
	return "$rc"
}

# fetch_source MIRROR SUITE PKG DIR: downloads a source package (.dsc and
# the files it lists) from the mirror's Sources index into DIR, each file
# checked against the index's SHA256; prints the .dsc path.
fetch_source() {
	local mirror=$1 suite=$2 pkg=$3 dir=$4 stanza pooldir f sum size name
	download "$mirror/dists/$suite/main/source/Sources.xz" "$dir/Sources.xz" || return 1
	stanza=$(xz -dc "$dir/Sources.xz" | awk -v p="$pkg" 'BEGIN{RS=""} $0 ~ "(^|\n)Package: " p "\n" {print; exit}')
	[[ -n $stanza ]] || { log "  no source package $pkg in $suite"; return 1; }
	pooldir=$(sed -n 's/^Directory: //p' <<<"$stanza")
	while read -r sum size name; do
		[[ -n $name ]] || continue
		download "$mirror/$pooldir/$name" "$dir/$name" || return 1
		[[ $(sha256sum "$dir/$name" | cut -d' ' -f1) == "$sum" ]] || { log "  $name: SHA256 mismatch"; return 1; }
		[[ $name == *.dsc ]] && f=$dir/$name
	done < <(awk '/^Checksums-Sha256:/{on=1; next} /^[^ ]/{on=0} on' <<<"$stanza")
	[[ -n ${f:-} ]] && echo "$f"
}

# check_sbuild STORE REF SUITE MIRROR: sbuild, Debian's package builder, in its
# schroot mode, with jailmgr installed setuid as 'schroot' and schroot itself
# absent, builds the hello source package twice as a user of the sbuild
# group, on a chroot that sbuild-createchroot --setup-only defined (a
# directory exported from the image, overlay union); the second build starts
# from a clean root.
check_sbuild() {
	local store=$1 ref=$2 suite=$3 mirror=$4 rc=0 work chroot name conf user=jailmgr-e2e-builder
	if command -v schroot >/dev/null 2>&1 && ! [[ $(readlink -f "$(command -v schroot)") == */jailmgr* ]]; then
		log "  schroot itself is installed: this check runs without it (apt-get purge schroot)"
		return 1
	fi
	# (main installs sbuild before any case starts: no apt-get on the host
	# while other cases run.)
	work=$(mktemp -d /srv/jailmgr-e2e-sbuild.XXXXXX)
	chmod 755 "$work"
	# sbuild-createchroot writes its chroot definition where schroot reads
	# it, if that folder exists: a host that has jailmgr as schroot makes it.
	local made_chroot_d=
	[[ -d /etc/schroot/chroot.d ]] || { mkdir -p /etc/schroot/chroot.d && made_chroot_d=1; }
	# The setuid jailmgr takes no JAILMGR_* variable: its sessions use the
	# default store and session folders, which it makes where missing.
	local made_state='' d
	for d in /var/lib/jailmgr /run/jailmgr; do
		[[ -e $d ]] || made_state+=" $d"
	done
	# shellcheck disable=SC2064
	trap "sbuild_cleanup '$work' '$made_chroot_d' '$made_state'; safe_rm '$CASE_STORE'" EXIT
	name=$suite-$(dpkg --print-architecture)-jailmgr-e2e
	chroot=$work/$name
	mkdir "$chroot" "$work/bin" "$work/build"
	# The chroot folder, as sbuild-createchroot would have made it with
	# debootstrap: here from the image, through its export.
	"$JM" --store "$store" image export "$ref" -o "$work/image.tar.zst" -q || { log "  image export $ref failed"; return 1; }
	tar --zstd -xpf "$work/image.tar.zst" -C "$chroot" || { log "  unpacking the export failed"; return 1; }
	rm -f "$work/image.tar.zst"
	# jailmgr as schroot, setuid root as schroot is, where sbuild looks for it
	# (sbuild clears the environment, so execvp's default path, /bin:/usr/bin),
	# as 'make install-schroot PREFIX=/usr SETUID=1' does.
	[[ -e /usr/bin/schroot ]] && { log "  /usr/bin/schroot exists: not replacing it"; return 1; }
	install -m 4755 "$JM" "$work/bin/jailmgr"
	# With its session init, as 'make install' puts it next to jailmgr.
	[[ ! -x $(dirname "$JM")/jailmgr-init ]] || install -m 0755 "$(dirname "$JM")/jailmgr-init" "$work/bin/jailmgr-init"
	ln -s "$work/bin/jailmgr" /usr/bin/schroot
	local path=/usr/local/bin:$PATH
	if ! getent passwd "$user" >/dev/null; then
		useradd -m "$user"
		# shellcheck disable=SC2064
		trap "sbuild_cleanup '$work' '$made_chroot_d' '$made_state'; userdel -r '$user' 2>/dev/null; safe_rm '$CASE_STORE'" EXIT
	fi
	sbuild-adduser "$user" >/dev/null 2>&1 || { log "  sbuild-adduser $user failed"; return 1; }
	if ! PATH=$path sbuild-createchroot --setup-only "$suite" "$chroot" "$mirror" >"$work/createchroot.log" 2>&1; then
		log "  sbuild-createchroot --setup-only failed:"
		tail -n 20 "$work/createchroot.log" | indent
		return 1
	fi
	conf=$(grep -l "^directory=$chroot\$" /etc/schroot/chroot.d/* 2>/dev/null | head -n1)
	[[ -n $conf ]] || { log "  sbuild-createchroot wrote no chroot definition naming $chroot"; return 1; }
	# sbuild-createchroot writes union-type=overlay when 'modprobe overlay'
	# works; on a kernel with overlay built in and no modules folder (this
	# CI's VMs) modprobe fails and it writes none: say so and set overlay.
	if grep -q '^union-type=none$' "$conf" && grep -qw overlay /proc/filesystems; then
		log "  (sbuild-createchroot could not run modprobe overlay here, and wrote union-type=none: set to overlay)"
		sed -i 's/^union-type=none$/union-type=overlay/' "$conf"
	fi
	grep -q '^union-type=overlay$' "$conf" || { log "  the chroot definition has no overlay union: $(cat "$conf")"; rc=1; }
	local dsc
	dsc=$(fetch_source "$mirror" "$suite" hello "$work/build") || { log "  could not fetch the hello source package"; return 1; }
	chown -R "$user:" "$work/build"
	local chrootname
	chrootname=$(sed -n 's/^\[\(.*\)\]$/\1/p' "$conf" | head -n1)
	local i marker=/jailmgr-e2e-dirty
	for i in 1 2; do
		local setup="touch $marker" t0=$SECONDS
		[[ $i == 2 ]] && setup="test ! -e $marker"
		if ! (cd "$work/build" && runuser -u "$user" -- env PATH="$path" HOME="/home/$user" \
			sbuild --chroot-mode=schroot -c "$chrootname" -d "$suite" --no-run-lintian --no-run-autopkgtest --no-run-piuparts \
			--chroot-setup-commands="$setup" "$dsc" >"$work/sbuild-$i.log" 2>&1); then
			log "  sbuild build $i failed; the end of its log:"
			tail -n 40 "$work/sbuild-$i.log" | indent
			rc=1
			break
		fi
		log "  sbuild build $i: $((SECONDS - t0))s"
		ls "$work/build"/hello_*.deb >/dev/null 2>&1 || { log "  build $i made no hello .deb"; rc=1; }
	done
	[[ -e $chroot$marker ]] && { log "  a session's change reached the chroot folder"; rc=1; }
	[[ -z $(PATH=$path runuser -u "$user" -- schroot --list --all-sessions 2>/dev/null) ]] || { log "  sessions survive the builds"; rc=1; }
	return "$rc"
}

# sbuild_cleanup WORK MADE_CHROOT_D MADE_STATE: removes what check_sbuild
# made outside its folder: the chroot definition, the chroot.d folder if it
# made it, and of the default store and session folders those in MADE_STATE
# (they were not there before) if they hold no file.
sbuild_cleanup() {
	local work=$1 made=$2 made_state=${3:-} f d
	for f in /etc/schroot/chroot.d/*; do
		[[ -f $f ]] && grep -q "^directory=$work/" "$f" && rm -f "$f"
	done
	if [[ -n $made ]]; then
		rmdir /etc/schroot/chroot.d /etc/schroot 2>/dev/null || true
	fi
	[[ $(readlink /usr/bin/schroot 2>/dev/null) == "$work/bin/jailmgr" ]] && rm -f /usr/bin/schroot
	# sbuild-createchroot also links the folder for sbuild's sudo mode.
	for f in /etc/sbuild/chroot/*; do
		[[ -L $f && $(readlink "$f") == "$work"/* ]] && rm -f "$f"
	done
	safe_rm "$work"
	for d in $made_state; do
		[[ -d $d && -z $(find "$d" -mindepth 1 ! -type d -print -quit) && -z $(mounts_below "$d") ]] && rm -r "$d"
	done
	return 0
}

# check_session STORE REF ROOTFS: a throwaway session of the image runs in new
# namespaces, apt-get installs hello inside it, and none of it reaches the image.
check_session() {
	local store=$1 ref=$2 rootfs=$3 out rc=0 host_pid
	host_pid=$(readlink /proc/self/ns/pid)
	if ! out=$("$JM" --store "$store" run "$ref" -- sh -c '. /etc/os-release; echo "id=$ID"; echo "pidns=$(readlink /proc/self/ns/pid)"; echo "procs=$(ls /proc | grep -c "^[0-9]")"; apt-get update -qq >/dev/null && apt-get install -y -qq hello >/dev/null 2>&1 && hello && touch /etc/e2e-session-marker' 2>&1); then
		log "  jailmgr run $ref failed:"
		printf '%s\n' "$out" | tail -n 20 | indent
		return 1
	fi
	grep -qx 'Hello, world!' <<<"$out" || { log "  hello did not run in the session: $out"; rc=1; }
	grep -q "^pidns=$host_pid\$" <<<"$out" && { log "  the session shares the host's pid namespace"; rc=1; }
	# init, sh, and the pipeline counting: a handful, never the host's hundreds.
	grep -q '^procs=[1-8]$' <<<"$out" || { log "  the session sees more than its own processes: $(grep '^procs=' <<<"$out")"; rc=1; }
	[[ -e $rootfs/etc/e2e-session-marker ]] && { log "  a session's writes reached the image"; rc=1; }
	# Root inside the session of a real image cannot reach past the jail.
	local probes='
		mkdir -p /mnt/x; mount -t tmpfs none /mnt/x 2>/dev/null && echo "escape: mount worked"
		unshare -U true 2>/dev/null && echo "escape: user namespace created"
		mknod /tmp/blk b 8 0 2>/dev/null && echo "escape: block device node made"
		(echo h > /proc/sysrq-trigger) 2>/dev/null && echo "escape: sysrq-trigger written"
		touch /sys/jailmgr 2>/dev/null && echo "escape: /sys written"
		kill -0 '"$$"' 2>/dev/null && echo "escape: host process reached"
		[ -e /proc/1/root'"$store"' ] && echo "escape: host tree through /proc/1/root"
		echo probes done'
	if ! out=$("$JM" --store "$store" run -u root "$ref" -- sh -c "$probes" 2>&1) || [[ $out != "probes done" ]]; then
		log "  isolation probes in the session:"
		printf '%s\n' "$out" | indent
		rc=1
	fi
	return "$rc"
}

# check_access STORE REF: schroot's access rules on named jails, for a caller
# who came through sudo (SUDO_UID): refused outside users/groups, run as
# themselves inside, root only as one of root-users.
check_access() {
	local store=$1 ref=$2 cfg rc=0 out
	cfg=$store/access.conf
	printf '[others]\nimage = %s\nusers = root\n\n[mine]\nimage = %s\nusers = nobody\n\n[admin]\nimage = %s\nroot-users = nobody\n' "$ref" "$ref" "$ref" >"$cfg"
	local as_nobody=(env SUDO_UID=65534 SUDO_GID=65534 "$JM" --store "$store" --config "$cfg")
	if out=$("${as_nobody[@]}" run others -- true 2>&1) || [[ $out != *"access denied"* ]]; then
		log "  a user outside users/groups was not refused: $out"
		rc=1
	fi
	if ! out=$("${as_nobody[@]}" run mine -- id -u 2>&1) || [[ $out != 65534 ]]; then
		log "  a command in an allowed jail did not run as the caller: $out"
		rc=1
	fi
	if out=$("${as_nobody[@]}" run -u root mine -- id -u 2>&1) || [[ $out != *"access denied"* ]]; then
		log "  a user outside root-users got root: $out"
		rc=1
	fi
	if ! out=$("${as_nobody[@]}" run -u root admin -- id -u 2>&1) || [[ $out != 0 ]]; then
		log "  a root-user did not get root: $out"
		rc=1
	fi
	return "$rc"
}

# seed_cache STORE makes STORE's package and index caches (before its first
# bootstrap) with hard links to every file of the shared caches. Both are
# content-addressed (<sha256>.deb, <sha256>.zst), so a file of another case
# is the right file here.
seed_cache() {
	local d
	for d in debs indexes; do
		mkdir -p "$1/cache/$d"
		find "$SHARED_CACHE/$d" -maxdepth 1 -type f \( -name '*.deb' -o -name '*.zst' \) -exec ln -t "$1/cache/$d" {} + 2>/dev/null || true
	done
}

# share_cache STORE adds STORE's cached files to the shared caches (hard
# links; a file another case put there first is left as it is).
share_cache() {
	local d
	for d in debs indexes; do
		[[ -d $1/cache/$d ]] || continue
		find "$1/cache/$d" -maxdepth 1 -type f \( -name '*.deb' -o -name '*.zst' \) -exec ln -t "$SHARED_CACHE/$d" {} + 2>/dev/null || true
	done
}

# run_case SUITE VARIANT, in a subshell of its own: bootstrap (while
# debootstrap --print-debs runs beside it), then every check (all run, each
# failure named), then cleanup whatever happened.
run_case() {
	local suite=$1 variant=$2
	# Global, not local: the EXIT trap runs after this function has returned.
	CASE_STORE=$(mktemp -d "${TMPDIR:-/tmp}/jailmgr-e2e.XXXXXX")
	trap 'safe_rm "$CASE_STORE"' EXIT
	local store=$CASE_STORE
	trap 'exit 130' INT
	trap 'exit 143' TERM
	# This case's sessions alone: the lifecycle check lists the sessions and
	# gc keeps what a session uses, while other cases run theirs.
	export JAILMGR_RUN_DIR=$store/run

	local mirror keyring name=e2e-$suite-$variant script
	mirror=$(mirror_for "$suite")
	keyring=$(keyring_for "$suite" "$KEYDIR")
	log "== $suite:$variant from $mirror${keyring:+ (keyring $keyring)}"
	script=$(debootstrap_script "$suite")
	# shellcheck disable=SC2016 # dpkg-query's field, not a shell variable
	[[ $script == "$DEBOOTSTRAP_SCRIPTS/$suite" ]] ||
		log "  debootstrap $(dpkg-query -W -f '${Version}' debootstrap) has no script for $suite: the expected set comes from its $(basename "$script") script, which upstream debootstrap links $suite to"

	# The flags of every bootstrap of this case (check_repro's and
	# check_release_pocket's too).
	CASE_BFLAGS=()
	[[ -n $keyring ]] && CASE_BFLAGS+=(--keyring "$keyring")
	local pockets
	pockets=$(suite_pockets "$suite")
	if [[ -n ${DEBIAN_SECURITY_MIRROR:-} && $(distribution "$suite") == debian && $pockets == *-security* ]]; then
		CASE_BFLAGS+=(--security-mirror "${DEBIAN_SECURITY_MIRROR%/}")
	fi
	log "  pockets: ${pockets//$'\n'/ }"
	# A frozen mirror serves Release files past their Valid-Until (sid's
	# says a week): only then does the bootstrap take --ignore-valid-until,
	# and the image's apt (check_apt, check_session) the option it writes.
	local pk m vu expired=
	for pk in $pockets; do
		m=$mirror
		if [[ $pk == *-security ]]; then
			m=$(security_mirror_for "$suite") || continue
		fi
		if vu=$(release_expired "$m" "$pk"); then
			log "  $pk: the Release on $m expired at $vu (now $(date -u '+%a, %d %b %Y %T UTC')): bootstrapping with --ignore-valid-until (debootstrap --print-debs never reads Valid-Until)"
			expired=1
		fi
	done
	[[ -z $expired ]] || CASE_BFLAGS+=(--ignore-valid-until)

	# What debootstrap selects, from the release pocket alone and from all
	# the pockets (expected_sets), while the bootstrap runs.
	# Its folders in the store: a case stopped halfway leaves none behind.
	local expected=$store/expected expected_release=$store/expected.release pd_pid
	mkdir "$store/tmp"
	TMPDIR=$store/tmp expected_sets "$suite" "$variant" "$mirror" "$keyring" "$expected_release" "$expected" 2>"$store/print-debs.log" &
	pd_pid=$!

	# bookworm:minbase is built twice (check_repro) with one
	# SOURCE_DATE_EPOCH: the two exports must be bit-identical.
	[[ $suite:$variant == bookworm:minbase ]] && export SOURCE_DATE_EPOCH=$(date +%s)
	local ref errlog=$store/bootstrap.log start=$SECONDS
	seed_cache "$store/s"
	if ! ref=$("$JM" --store "$store/s" bootstrap "$suite" --variant "$variant" --mirror "$mirror" "${CASE_BFLAGS[@]}" --name "$name" 2>"$errlog"); then
		log "  bootstrap failed; the end of its stderr:"
		tail -n 40 "$errlog" | indent
		wait "$pd_pid" || true
		log "  failed: bootstrap"
		return 1
	fi
	log "  bootstrapped $ref in $((SECONDS - start))s"
	share_cache "$store/s"
	local rootfs
	rootfs=$("$JM" --store "$store/s" image show "$ref" --json | jq -r .rootfs)
	if [[ -z $rootfs || $rootfs == null || ! -d $rootfs ]]; then
		log "  image show $ref --json gives no rootfs folder ('$rootfs')"
		wait "$pd_pid" || true
		log "  failed: image show"
		return 1
	fi

	local failed=() have_expected=
	if ! wait "$pd_pid"; then
		cat "$store/print-debs.log" >&2
	elif [[ ! -s $expected || ! -s $expected_release ]]; then
		log "  debootstrap --print-debs printed no packages"
	else
		have_expected=1
	fi
	if [[ -n $have_expected ]]; then
		# Said whenever it happens: an update that gained (or lost) a
		# dependency makes the default bootstrap differ from what
		# debootstrap, which reads the release pocket alone, installs.
		if ! cmp -s "$expected_release" "$expected"; then
			log "  the pockets' newest versions change debootstrap's selection from the release pocket's (- release alone, + all pockets):"
			{ diff "$expected_release" "$expected" || true; } | sed -n 's/^< /-/p; s/^> /+/p' | indent
		fi
		check_packages "$rootfs" "$expected" && log "  a. package set: same as debootstrap's from the same pockets" || failed+=(a:packages)
	else
		failed+=(a:print-debs)
	fi
	check_audit "$rootfs" && log "  b. dpkg --audit: silent" || failed+=(b:audit)
	"$JM" --store "$store/s" image verify "$ref" >/dev/null && log "  h. image verify: the tree matches its index and dpkg's md5sums" || failed+=(h:verify)
	check_apt "$rootfs" && log "  c. apt-get check, update, install hello: ok; hello runs" || failed+=(c:apt)
	check_pockets "$rootfs" "$suite" && log "  l. pockets: sources.list names ${pockets//$'\n'/ }; apt list --upgradable after apt-get update: nothing" || failed+=(l:pockets)
	case $suite:$variant in
	bookworm:minbase | focal:minbase)
		if [[ -n $have_expected ]] && check_release_pocket "$store/s" "$name" "$suite" "$variant" "$mirror" "$expected_release"; then
			log "  m. --pockets release: debootstrap's package set, and its one sources.list line"
		else
			failed+=(m:release-pocket)
		fi
		;;
	esac
	check_session "$store/s" "$ref" "$rootfs" && log "  e. session: new namespaces, no way out for root, apt-get install hello works, the image untouched" || failed+=(e:session)
	if [[ $suite:$variant == bookworm:buildd ]]; then
		check_sbuild "$store/s" "$ref" "$suite" "$mirror" && log "  i. sbuild: hello built twice through jailmgr as schroot (setuid, non-root builder), clean root each time" || failed+=(i:sbuild)
	fi
	if [[ $suite:$variant == bookworm:minbase ]]; then
		check_repro "$store/s" "$name" "$suite" "$variant" "$mirror" && log "  k. reproducible: a second bootstrap with the same SOURCE_DATE_EPOCH exports to the same bytes" || failed+=(k:reproducible)
		check_export "$store/s" "$ref" && log "  j. export: skopeo and umoci take the OCI export; importing either export gives the same files and packages" || failed+=(j:export)
		check_access "$store/s" "$ref" && log "  f. access: refused outside users, the caller's own user inside, root only for root-users" || failed+=(f:access)
		start=$SECONDS
		check_warm "$store/s" "$name" "$suite" "$variant" "$mirror" "$keyring" &&
			log "  d. warm cache: $name:2 in $((SECONDS - start))s, downloaded 0 bytes, same packages" || failed+=(d:warm-cache)
		check_lifecycle "$store/s" "$name" && log "  g. lifecycle: update beside a running session, rm refuses then --force, gc keeps what a session uses" || failed+=(g:lifecycle)
	fi
	if ((${#failed[@]})); then
		log "  failed: ${failed[*]}"
		return 1
	fi
}

# The cases that main runs, by index: E2E_RUNNING maps the pid of each
# running one (the leader of its process group) to its index.
declare -a E2E_CASE_LIST=() E2E_STARTED=() E2E_RESULT=()
declare -A E2E_RUNNING=()

# reap_case waits for one running case to end, prints its log whole, and
# records its result line.
reap_case() {
	local pid rc i why
	set +e
	wait -n -p pid "${!E2E_RUNNING[@]}"
	rc=$?
	set -e
	i=${E2E_RUNNING[$pid]}
	unset "E2E_RUNNING[$pid]"
	cat "$E2E_LOGDIR/$i.log" >&2
	why=$(sed -n 's/^  failed: //p' "$E2E_LOGDIR/$i.log" | tail -n1)
	if ((rc == 0)); then
		E2E_RESULT[i]="PASS ${E2E_CASE_LIST[i]} ($((SECONDS - E2E_STARTED[i]))s)"
	else
		E2E_RESULT[i]="FAIL ${E2E_CASE_LIST[i]} ($((SECONDS - E2E_STARTED[i]))s): ${why:-exit status $rc, see its log}"
	fi
	log "${E2E_RESULT[i]}"
	rm -f "$E2E_LOGDIR/$i.log"
}

# stop_cases ends the cases still running (each its whole process group, so
# that a bootstrap or dpkg inside stops too) and waits for their cleanup.
stop_cases() {
	local pid
	for pid in "${!E2E_RUNNING[@]}"; do
		kill -TERM -- "-$pid" 2>/dev/null || true
	done
	for pid in "${!E2E_RUNNING[@]}"; do
		wait "$pid" 2>/dev/null || true
		cat "$E2E_LOGDIR/${E2E_RUNNING[$pid]}.log" >&2 2>/dev/null || true
		log "STOPPED ${E2E_CASE_LIST[${E2E_RUNNING[$pid]}]}"
	done
	E2E_RUNNING=()
}

main() {
	[[ $(id -u) == 0 ]] || die "run as root (chroot, mounts)"
	local c
	read -ra E2E_CASE_LIST <<<"${E2E_CASES:-$(default_cases)}"
	for c in "${E2E_CASE_LIST[@]}"; do
		[[ $c == *:* ]] || die "E2E_CASES: '$c' is not SUITE:VARIANT"
		distribution "${c%%:*}" >/dev/null
	done
	local jobs=${E2E_JOBS:-3}
	[[ $jobs =~ ^[1-9][0-9]*$ ]] || die "E2E_JOBS=$jobs is not a positive number"

	[[ -s $DEBIAN_KEYRING ]] || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debian-archive-keyring >&2
	local tools=(debootstrap:debootstrap xz:xz-utils zstd:zstd jq:jq gpgv:gpgv sha256sum:coreutils skopeo:skopeo umoci:umoci)
	# Installed now: no apt-get on the host once cases run side by side.
	[[ " ${E2E_CASE_LIST[*]} " == *" bookworm:buildd "* ]] && tools+=(sbuild:sbuild)
	ensure_tools "${tools[@]}"
	command -v curl >/dev/null 2>&1 || command -v wget >/dev/null 2>&1 || ensure_tools curl:curl
	JM=$(jailmgr_bin)
	KEYDIR=$(mktemp -d "${TMPDIR:-/tmp}/jailmgr-e2e-keys.XXXXXX")
	SHARED_CACHE=$(mktemp -d "${TMPDIR:-/tmp}/jailmgr-e2e-cache.XXXXXX")
	mkdir "$SHARED_CACHE/debs" "$SHARED_CACHE/indexes"
	E2E_LOGDIR=$(mktemp -d "${TMPDIR:-/tmp}/jailmgr-e2e-logs.XXXXXX")
	trap 'stop_cases; safe_rm "$KEYDIR"; safe_rm "$SHARED_CACHE"; rm -rf "$E2E_LOGDIR"' EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	export JM KEYDIR SHARED_CACHE
	# The Ubuntu keyring once, before cases that need it run side by side.
	for c in "${E2E_CASE_LIST[@]}"; do
		if [[ $(distribution "${c%%:*}") == ubuntu ]]; then
			keyring_for "${c%%:*}" "$KEYDIR" >/dev/null
			break
		fi
	done

	# Job control: each case runs in a process group of its own, which
	# stop_cases can end whole.
	set -m
	local i t0=$SECONDS
	for i in "${!E2E_CASE_LIST[@]}"; do
		while ((${#E2E_RUNNING[@]} >= jobs)); do
			reap_case
		done
		c=${E2E_CASE_LIST[i]}
		E2E_STARTED[i]=$SECONDS
		(
			set -e
			run_case "${c%%:*}" "${c#*:}"
		) </dev/null >"$E2E_LOGDIR/$i.log" 2>&1 &
		E2E_RUNNING[$!]=$i
	done
	while ((${#E2E_RUNNING[@]})); do
		reap_case
	done
	set +m

	local passed=0 nfailed=0
	echo
	for i in "${!E2E_CASE_LIST[@]}"; do
		printf '%s\n' "${E2E_RESULT[i]}"
		[[ ${E2E_RESULT[i]} == PASS* ]] && passed=$((passed + 1)) || nfailed=$((nfailed + 1))
	done
	echo "all ${#E2E_CASE_LIST[@]} cases in $((SECONDS - t0))s, $jobs at a time"
	echo "$passed passed, $nfailed failed"
	((nfailed == 0))
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
	main "$@"
	exit
fi
