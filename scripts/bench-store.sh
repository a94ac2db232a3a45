#!/usr/bin/env bash
# The store's costs, measured on a bookworm minbase image:
#
#   1. disk used by 5 versions of one image made with `image update`
#      (each installing one more small package), against 5 independent
#      copies of the same trees;
#   2. export and import throughput, tar (zstd) and OCI, against
#      `tar --zstd -c` and `tar --zstd -x` of the same tree, timed side by
#      side by hyperfine.
#
#   sudo bash scripts/bench-store.sh [MIRROR_URL]
#
# bench.sh calls it with its loopback mirror; alone, the mirror comes from
# the host's apt sources. Environment: STORE_RUNS (5).

set -euo pipefail
# shellcheck source=scripts/e2e.sh
source "$(dirname "${BASH_SOURCE[0]}")/e2e.sh"

bench_store() {
	local mirror=${1:-} work runs=${STORE_RUNS:-5} name=storebench
	[[ -n $mirror ]] || mirror=$(mirror_for bookworm)
	ensure_tools hyperfine:hyperfine zstd:zstd
	JM=$(jailmgr_bin)
	work=$(mktemp -d "${TMPDIR:-/var/tmp}/jailmgr-bench-store.XXXXXX")
	# shellcheck disable=SC2064
	trap "safe_rm '$work'" EXIT
	local jm=("$JM" -q --store "$work/s")
	"${jm[@]}" bootstrap bookworm --variant minbase --mirror "$mirror" --name "$name" >/dev/null
	local pkg
	for pkg in hello less file bc; do
		"${jm[@]}" image update "$name" --include "$pkg" >/dev/null
	done

	# 1. Disk: du counts a hard-linked file once per invocation.
	local v shared indep=0 sizes=()
	shared=$(du -sk "$work/s/images/$name" | cut -f1)
	for v in 1 2 3 4 5; do
		sizes+=("$(du -sk "$work/s/images/$name/$v" | cut -f1)")
		indep=$((indep + sizes[-1]))
	done
	echo "### Disk: 5 versions of one image ($(date -u +%F), $(nproc) cores)"
	echo
	echo "| | KiB | relative |"
	echo "|---|---:|---:|"
	echo "| 5 versions in the store (1 bootstrap + 4 \`image update --include\`) | $shared | $(awk -v a="$shared" -v b="$indep" 'BEGIN{printf "%.2f", a/b}') |"
	echo "| 5 independent copies of the same trees | $indep | 1.00 |"
	echo "| one version alone (v1) | ${sizes[0]} | $(awk -v a="${sizes[0]}" -v b="$indep" 'BEGIN{printf "%.2f", a/b}') |"
	echo

	# 2. Export and import against tar --zstd of the same tree.
	local root bytes
	root=$("${jm[@]}" image show "$name" --rootfs)
	bytes=$(du -sb --apparent-size "$root" | cut -f1)
	mkdir -p "$work/x"
	"${jm[@]}" image export "$name" -o "$work/img.tar.zst"
	"${jm[@]}" image export "$name" -o "$work/img.oci" --format oci
	tar --zstd -cpf "$work/ref.tar.zst" -C "$root" .
	local md=$work/io.md
	hyperfine -N --style basic --warmup 1 --runs "$runs" --export-markdown "$md" --export-json "${md%.md}.json" \
		--prepare "sh -c 'rm -f $work/out.tar.zst $work/out.oci'" \
		-n 'jailmgr image export (tar, zstd)' "$JM -q --store $work/s image export $name -o $work/out.tar.zst" \
		-n 'jailmgr image export (oci)' "$JM -q --store $work/s image export $name -o $work/out.oci --format oci" \
		-n 'tar --zstd -c' "tar --zstd -cpf $work/out.tar.zst -C $root ." >&2
	local md2=$work/io2.md
	hyperfine -N --style basic --warmup 1 --runs "$runs" --export-markdown "$md2" --export-json "${md2%.md}.json" \
		--prepare "sh -c 'rm -rf $work/x && mkdir $work/x && $JM -q --store $work/s image rm imported >/dev/null 2>&1; true'" \
		-n 'jailmgr image import (tar, zstd)' "$JM -q --store $work/s image import $work/img.tar.zst --name imported" \
		-n 'jailmgr image import (oci)' "$JM -q --store $work/s image import $work/img.oci --name imported" \
		-n 'tar --zstd -x' "tar --zstd -xpf $work/ref.tar.zst -C $work/x" >&2
	echo "### Export and import of bookworm minbase ($((bytes / 1048576)) MiB of files; $(date -u +%F))"
	echo
	cat "$md"
	echo
	cat "$md2"
	echo
	echo "Throughput (MiB of files per second, mean):"
	echo
	jq -r --argjson b "$bytes" '.results[] | "- \(.command): \($b / .mean / 1048576 | floor) MiB/s"' "${md%.md}.json" "${md2%.md}.json" 2>/dev/null || true
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
	bench_store "$@"
fi
