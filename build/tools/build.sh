#!/usr/bin/env bash
# Builds the lab's pinned third-party binaries (Kubernetes control plane and
# node components, kubectl, etcd, CoreDNS, kube-router) from the Go module proxy into one
# cache folder, and prints that folder on the last line of stdout:
#
#   dir=$(bash build/tools/build.sh | tail -1)                      # everything
#   dir=$(bash build/tools/build.sh kube-apiserver etcd | tail -1)  # envtest only
#   KUBEBUILDER_ASSETS=$dir go test ./...
#
# Progress goes to stderr. A binary is rebuilt only when it is missing or its
# stamp (module version, go.sum digest, link flags) no longer matches the pins
# in this folder's go.mod files. The cache folder is
# ${FALCO_PHANTOM_TOOLS_DIR:-$HOME/.cache/falco-phantom/tools/k8s-<version>}.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"
tools_root=$PWD

# Each tools module is built on its own, whatever go.work or GOFLAGS the
# caller has around.
export GOWORK=off
export CGO_ENABLED=0

all_names=(kube-apiserver etcd kubectl kubelet kube-controller-manager kube-scheduler kube-proxy coredns kube-router)

usage() {
	echo "usage: $0 [name...]   (names: ${all_names[*]}; default: all)" >&2
}

# module_dir NAME: the tools module that pins NAME.
module_dir() {
	case "$1" in
	kube-apiserver | kubelet | kube-controller-manager | kube-scheduler | kube-proxy | kubectl) echo kubernetes ;;
	etcd) echo etcd ;;
	coredns) echo coredns ;;
	kube-router) echo kube-router ;;
	*) return 1 ;;
	esac
}

# main_package NAME: the Go main package that becomes binary NAME.
main_package() {
	case "$1" in
	etcd) echo go.etcd.io/etcd/server/v3 ;;
	coredns) echo github.com/coredns/coredns ;;
	kube-router) echo github.com/cloudnativelabs/kube-router/v2/cmd/kube-router ;;
	*) echo "k8s.io/kubernetes/cmd/$1" ;;
	esac
}

# upstream_module NAME: the pinned module NAME comes from.
upstream_module() {
	case "$1" in
	etcd) echo go.etcd.io/etcd/server/v3 ;;
	coredns) echo github.com/coredns/coredns ;;
	kube-router) echo github.com/cloudnativelabs/kube-router/v2 ;;
	*) echo k8s.io/kubernetes ;;
	esac
}

# pinned_version MODULE_DIR MODULE: the version MODULE_DIR/go.mod selects.
pinned_version() {
	(cd "$tools_root/$1" && go list -mod=readonly -m -f '{{.Version}}' "$2")
}

names=()
for arg in "$@"; do
	case "$arg" in
	-h | --help)
		usage
		exit 0
		;;
	esac
	if ! module_dir "$arg" >/dev/null; then
		echo "unknown binary: $arg" >&2
		usage
		exit 2
	fi
	names+=("$arg")
done
if [ ${#names[@]} -eq 0 ]; then
	names=("${all_names[@]}")
fi

k8s_version=$(pinned_version kubernetes k8s.io/kubernetes)
dir=${FALCO_PHANTOM_TOOLS_DIR:-$HOME/.cache/falco-phantom/tools/k8s-$k8s_version}
mkdir -p "$dir/.stamps"

# Concurrent runs (parallel test packages, say) wait for each other instead of
# building the same thing twice.
if command -v flock >/dev/null 2>&1; then
	exec 9>"$dir/.lock"
	flock 9
fi

tmp_bin=
cleanup() {
	if [ -n "$tmp_bin" ]; then
		rm -f "$tmp_bin"
	fi
}
trap cleanup EXIT

# Version information that Kubernetes' own release build links in; without
# it the API server reports v0.0.0-master and clients cannot parse it. The
# build date is the commit time of the pinned release, so it never changes.
k8s_ldflags() {
	local v=$1 major minor date
	major=${v#v}
	major=${major%%.*}
	minor=${v#v*.}
	minor=${minor%%.*}
	date=$(cd "$tools_root/kubernetes" &&
		go list -mod=readonly -m -f '{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}' k8s.io/kubernetes)
	local pkg flags=-s
	for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
		flags+=" -X $pkg.gitVersion=$v -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
		flags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$date"
	done
	echo "$flags"
}

duration() {
	local s=$1
	if [ "$s" -ge 60 ]; then
		printf '%dm%02ds' $((s / 60)) $((s % 60))
	else
		printf '%ds' "$s"
	fi
}

declare -A versions ldflags_for built_in_module
for name in "${names[@]}"; do
	mod_dir=$(module_dir "$name")
	module=$(upstream_module "$name")
	key="$mod_dir $module"
	if [ -z "${versions[$key]+set}" ]; then
		versions[$key]=$(pinned_version "$mod_dir" "$module")
	fi
	version=${versions[$key]}
	if [ "$mod_dir" = kubernetes ]; then
		if [ -z "${ldflags_for[$version]+set}" ]; then
			ldflags_for[$version]=$(k8s_ldflags "$version")
		fi
		ldflags=${ldflags_for[$version]}
	else
		ldflags=-s
	fi
	gosum=$(sha256sum "$tools_root/$mod_dir/go.sum" | cut -c1-16)

	stamp_file=$dir/.stamps/$name
	stamp="$name $module@$version go.sum:$gosum ldflags:$ldflags"
	if [ -x "$dir/$name" ] && [ -f "$stamp_file" ] && [ "$(cat "$stamp_file")" = "$stamp" ]; then
		echo "$name $version: up to date" >&2
		continue
	fi

	if [ -n "${built_in_module[$mod_dir]+set}" ]; then
		hint="a minute or so more, sharing the build cache"
	else
		case "$name" in
		etcd) hint="about two minutes" ;;
		coredns | kube-router) hint="a few minutes" ;;
		*) hint="several minutes" ;;
		esac
	fi
	echo "building $name $version (first time takes $hint)..." >&2
	start=$SECONDS
	rm -f "$stamp_file"
	tmp_bin=$dir/.$name.tmp.$$
	(cd "$tools_root/$mod_dir" &&
		go build -mod=readonly -trimpath -buildvcs=false -ldflags "$ldflags" \
			-o "$tmp_bin" "$(main_package "$name")")
	mv -f "$tmp_bin" "$dir/$name"
	tmp_bin=
	printf '%s\n' "$stamp" >"$stamp_file"
	built_in_module[$mod_dir]=1
	echo "built $name in $(duration $((SECONDS - start)))" >&2
done

echo "$dir"
