#!/usr/bin/env bash
# End-to-end checks of `jailmgr bootstrap` against the real archives.
#
#   sudo bash scripts/e2e.sh                        # all cases
#   sudo E2E_CASES="bookworm:minbase focal:minbase" bash scripts/e2e.sh
#
# For each case SUITE:VARIANT it bootstraps into a fresh temporary store and
# checks that
#   a. the installed package set is the one `debootstrap --print-debs` selects,
#   b. `dpkg --audit` is silent,
#   c. `apt-get check` passes, and with /proc and /dev mounted `apt-get update`
#      and `apt-get install hello` work and `hello` runs,
#   d. (bookworm:minbase) a second bootstrap into the same store downloads
#      nothing and becomes NAME:2.
# It ends with "N passed, M failed" and exits non-zero if any case failed.
#
# No mirror is written here: Debian's comes from the host's apt sources, Ubuntu's
# from debootstrap's own suite script, both at run time; DEBIAN_MIRROR and
# UBUNTU_MIRROR override them. The Ubuntu keyring is taken from the
# ubuntu-keyring package in the Ubuntu archive itself (see ubuntu_keyring).
#
# Environment: E2E_CASES, DEBIAN_MIRROR, UBUNTU_MIRROR, JAILMGR (the binary;
# default bin/jailmgr, built if missing), TMPDIR (where stores are made).
#
# bench.sh sources this file for its helper functions; main runs only when the
# file is executed.

set -euo pipefail

E2E_DEFAULT_CASES="bookworm:minbase bookworm:buildd focal:minbase noble:minbase"
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
# packages debootstrap would install.
print_debs() {
	local suite=$1 variant=$2 mirror=$3 keyring=${4:-} target script args=()
	target=$(mktemp -d "${TMPDIR:-/tmp}/e2e-printdebs.XXXXXX")
	script=$(debootstrap_script "$suite")
	[[ -n $keyring ]] && args+=(--keyring="$keyring")
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
	debootstrap --print-debs --variant="$variant" "${args[@]}" "$suite" "$target" "$mirror" "$script" 2>"$target.log" |
		tr ' ' '\n' | sed '/^$/d' | sort -u
	local rc=${PIPESTATUS[0]}
	((rc == 0)) || { log "  debootstrap --print-debs failed:"; tail -n 20 "$target.log" | indent; }
	rm -rf --one-file-system "$target" "$target.log"
	return "$rc"
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
# /dev and /proc mounted (unmounted again before returning).
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
	if ! out=$(in_root "$rootfs" sh -c 'apt-get update && apt-get install -y hello' 2>&1); then
		log "  apt-get update && apt-get install hello failed:"
		tail -n 30 <<<"$out" | indent
		log "  apt sources in the image:"
		cat "$rootfs"/etc/apt/sources.list "$rootfs"/etc/apt/sources.list.d/* 2>/dev/null | indent || true
		rc=1
	elif ! out=$(in_root "$rootfs" hello 2>&1) || [[ $out != "Hello, world!" ]]; then
		log "  hello printed: $out"
		rc=1
	fi
	unmount_all "$rootfs"
	safe_rm "$ov"
	return "$rc"
}

# check_warm STORE NAME MIRROR KEYRING FIRST_REF: a second bootstrap into the same
# store downloads nothing, becomes NAME:2 with the same packages, and the image
# commands see both versions.
check_warm() {
	local store=$1 name=$2 suite=$3 variant=$4 mirror=$5 keyring=$6 errlog ref rc=0
	errlog=$(mktemp)
	local kflag=()
	[[ -n $keyring ]] && kflag=(--keyring "$keyring")
	if ! ref=$("$JM" --store "$store" bootstrap "$suite" --variant "$variant" --mirror "$mirror" "${kflag[@]}" --name "$name" 2>"$errlog"); then
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
	rm -f "$errlog"
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
	"$JM" --store "$store" image rm "$name:1" >/dev/null 2>&1 || { log "  image rm $name:1 failed"; rc=1; }
	n=$("$JM" --store "$store" image list --json | jq --arg n "$name" '[.[] | select(.name == $n)] | length')
	[[ $n == 1 ]] || { log "  after image rm, image list shows $n versions of $name, want 1"; rc=1; }
	return "$rc"
}

# check_lifecycle STORE NAME: with a session open on NAME (its newest
# version, N), image update builds N+1 while the session keeps running, rm
# refuses N while the session lives, gc keeps it for the session and removes
# it after, and rm --force ends a session to remove its version.
check_lifecycle() {
	local store=$1 name=$2 rc=0 out sid from to
	local jm=("$JM" --store "$store")
	from=$("${jm[@]}" image show "$name" --json | jq -r '"\(.name):\(.version)"')
	sid=$("${jm[@]}" session begin "$name") || { log "  session begin $name failed"; return 1; }
	if ! to=$("${jm[@]}" image update "$name" 2>"$store/update.log"); then
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

# check_repro STORE NAME SUITE VARIANT MIRROR KEYRING: a second bootstrap of
# the same archive state into another store (its package cache linked from
# the first), with the same SOURCE_DATE_EPOCH, exports to the same bytes as
# NAME:1 of the first.
check_repro() {
	local store=$1 name=$2 suite=$3 variant=$4 mirror=$5 keyring=$6 other=$1.repro rc=0 s1 s2
	local kflag=()
	[[ -n $keyring ]] && kflag=(--keyring "$keyring")
	mkdir -p "$other/cache"
	cp -al "$store/cache/debs" "$other/cache/"
	if ! "$JM" -q --store "$other" bootstrap "$suite" --variant "$variant" --mirror "$mirror" "${kflag[@]}" --name "$name" >/dev/null 2>"$other.log"; then
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
	ensure_tools sbuild:sbuild
	work=$(mktemp -d /srv/jailmgr-e2e-sbuild.XXXXXX)
	chmod 755 "$work"
	# sbuild-createchroot writes its chroot definition where schroot reads
	# it, if that folder exists: a host that has jailmgr as schroot makes it.
	local made_chroot_d=
	[[ -d /etc/schroot/chroot.d ]] || { mkdir -p /etc/schroot/chroot.d && made_chroot_d=1; }
	# shellcheck disable=SC2064
	trap "sbuild_cleanup '$work' '$made_chroot_d'; safe_rm '$CASE_STORE'" EXIT
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
		trap "sbuild_cleanup '$work' '$made_chroot_d'; userdel -r '$user' 2>/dev/null; safe_rm '$CASE_STORE'" EXIT
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
		local setup="touch $marker"
		[[ $i == 2 ]] && setup="test ! -e $marker"
		if ! (cd "$work/build" && runuser -u "$user" -- env PATH="$path" HOME="/home/$user" \
			sbuild --chroot-mode=schroot -c "$chrootname" -d "$suite" --no-run-lintian --no-run-autopkgtest --no-run-piuparts \
			--chroot-setup-commands="$setup" "$dsc" >"$work/sbuild-$i.log" 2>&1); then
			log "  sbuild build $i failed; the end of its log:"
			tail -n 40 "$work/sbuild-$i.log" | indent
			rc=1
			break
		fi
		ls "$work/build"/hello_*.deb >/dev/null 2>&1 || { log "  build $i made no hello .deb"; rc=1; }
	done
	[[ -e $chroot$marker ]] && { log "  a session's change reached the chroot folder"; rc=1; }
	[[ -z $(PATH=$path runuser -u "$user" -- schroot --list --all-sessions 2>/dev/null) ]] || { log "  sessions survive the builds"; rc=1; }
	return "$rc"
}

# sbuild_cleanup WORK MADE_CHROOT_D: removes what check_sbuild made outside
# its folder: the chroot definition, and the chroot.d folder if it made it.
sbuild_cleanup() {
	local work=$1 made=$2 f
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

# run_case SUITE VARIANT, in a subshell of its own: bootstrap, then every check
# (all run, each failure named), then cleanup whatever happened.
run_case() {
	local suite=$1 variant=$2
	# Global, not local: the EXIT trap runs after this function has returned.
	CASE_STORE=$(mktemp -d "${TMPDIR:-/tmp}/jailmgr-e2e.XXXXXX")
	trap 'safe_rm "$CASE_STORE"' EXIT
	local store=$CASE_STORE
	trap 'exit 130' INT
	trap 'exit 143' TERM

	local mirror keyring name=e2e-$suite-$variant
	mirror=$(mirror_for "$suite")
	keyring=$(keyring_for "$suite" "$KEYDIR")
	log "== $suite:$variant from $mirror${keyring:+ (keyring $keyring)}"

	local expected=$store/expected
	print_debs "$suite" "$variant" "$mirror" "$keyring" >"$expected" || return 1
	[[ -s $expected ]] || { log "  debootstrap --print-debs printed no packages"; return 1; }

	# bookworm:minbase is built twice (check_repro) with one
	# SOURCE_DATE_EPOCH: the two exports must be bit-identical.
	[[ $suite:$variant == bookworm:minbase ]] && export SOURCE_DATE_EPOCH=$(date +%s)
	local kflag=() ref errlog=$store/bootstrap.log start=$SECONDS
	[[ -n $keyring ]] && kflag=(--keyring "$keyring")
	if ! ref=$("$JM" --store "$store/s" bootstrap "$suite" --variant "$variant" --mirror "$mirror" "${kflag[@]}" --name "$name" 2>"$errlog"); then
		log "  bootstrap failed; the end of its stderr:"
		tail -n 40 "$errlog" | indent
		return 1
	fi
	log "  bootstrapped $ref in $((SECONDS - start))s"
	local rootfs
	rootfs=$("$JM" --store "$store/s" image show "$ref" --json | jq -r .rootfs)
	if [[ -z $rootfs || $rootfs == null || ! -d $rootfs ]]; then
		log "  image show $ref --json gives no rootfs folder ('$rootfs')"
		return 1
	fi

	local failed=()
	check_packages "$rootfs" "$expected" && log "  a. package set: same as debootstrap's" || failed+=(a:packages)
	check_audit "$rootfs" && log "  b. dpkg --audit: silent" || failed+=(b:audit)
	"$JM" --store "$store/s" image verify "$ref" >/dev/null && log "  h. image verify: the tree matches its index and dpkg's md5sums" || failed+=(h:verify)
	check_apt "$rootfs" && log "  c. apt-get check, update, install hello: ok; hello runs" || failed+=(c:apt)
	check_session "$store/s" "$ref" "$rootfs" && log "  e. session: new namespaces, no way out for root, apt-get install hello works, the image untouched" || failed+=(e:session)
	if [[ $suite:$variant == bookworm:buildd ]]; then
		check_sbuild "$store/s" "$ref" "$suite" "$mirror" && log "  i. sbuild: hello built twice through jailmgr as schroot (setuid, non-root builder), clean root each time" || failed+=(i:sbuild)
	fi
	if [[ $suite:$variant == bookworm:minbase ]]; then
		check_repro "$store/s" "$name" "$suite" "$variant" "$mirror" "$keyring" && log "  k. reproducible: a second bootstrap with the same SOURCE_DATE_EPOCH exports to the same bytes" || failed+=(k:reproducible)
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

main() {
	[[ $(id -u) == 0 ]] || die "run as root (chroot, mounts)"
	[[ -s $DEBIAN_KEYRING ]] || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debian-archive-keyring >&2
	ensure_tools debootstrap:debootstrap xz:xz-utils jq:jq gpgv:gpgv sha256sum:coreutils skopeo:skopeo umoci:umoci
	command -v curl >/dev/null 2>&1 || command -v wget >/dev/null 2>&1 || ensure_tools curl:curl
	JM=$(jailmgr_bin)
	KEYDIR=$(mktemp -d "${TMPDIR:-/tmp}/jailmgr-e2e-keys.XXXXXX")
	trap 'safe_rm "$KEYDIR"' EXIT
	export JM KEYDIR

	local cases c passed=0 nfailed=0 summary=() start
	read -ra cases <<<"${E2E_CASES:-$E2E_DEFAULT_CASES}"
	for c in "${cases[@]}"; do
		[[ $c == *:* ]] || die "E2E_CASES: '$c' is not SUITE:VARIANT"
		start=$SECONDS
		set +e
		(
			set -e
			run_case "${c%%:*}" "${c#*:}"
		)
		local rc=$?
		set -e
		if ((rc == 0)); then
			passed=$((passed + 1))
			summary+=("PASS $c ($((SECONDS - start))s)")
		else
			nfailed=$((nfailed + 1))
			summary+=("FAIL $c ($((SECONDS - start))s)")
		fi
		log "${summary[-1]}"
	done
	echo
	printf '%s\n' "${summary[@]}"
	echo "$passed passed, $nfailed failed"
	((nfailed == 0))
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
	main "$@"
	exit
fi
