# Shared by install.sh and uninstall.sh, which source it from their own folder (the release,
# then /opt/xsmeta): the names both use, --root, and the root they work under.
# Before sourcing, the script sets SELF (its name, for messages).

MARK='# xsmeta-launcher'
PREFIX=/opt/xsmeta
ROOT=/

die() {
  echo "$SELF: $*" >&2
  exit 1
}
usage_error() {
  echo "$SELF: $* (see --help)" >&2
  exit 2
}

# Takes --root DIR / --root=DIR off the front of the arguments: sets ROOT and SHIFT (how many
# arguments it used); fails (returns 1) when $1 is not --root.
root_arg() {
  case $1 in
  --root)
    [ $# -ge 2 ] && [ -n "$2" ] || usage_error "--root needs a folder"
    ROOT=$2
    SHIFT=2
    ;;
  --root=?*)
    ROOT=${1#--root=}
    SHIFT=1
    ;;
  *) return 1 ;;
  esac
}

# From ROOT: R (the root, empty for /), DEST (where xsmeta lives) and RECORD (what install.sh
# did); at / only root may run. $1: why root is needed.
resolve_root() {
  [ -d "$ROOT" ] || die "--root $ROOT: no such folder"
  R=$(cd "$ROOT" && pwd)
  [ "$R" = / ] && R=
  if [ -z "$R" ] && [ "$(id -u)" != 0 ]; then die "run as root$1"; fi
  DEST=$R$PREFIX
  RECORD=$DEST/installed-files
}

is_ours() { [ -f "$1" ] && head -n 2 "$1" | grep -qxF "$MARK"; }
