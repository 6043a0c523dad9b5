#!/bin/sh
# Installs xsmeta on a XenServer / XCP-ng pool host, in place of upstream's
# xe-backup-metadata and xe-restore-metadata, keeping upstream's scripts aside.
#
# Where the callers look (xapi's and xsconsole's own sources):
# - xsconsole runs "<helper dir>/xe-backup-metadata" and ".../xe-restore-metadata"
#   (plugins-base/XSFeatureDRBackup.py, plugins-base/XSFeatureDRRestore.py), the helper dir
#   being the first of /usr/lib/xcp/bin and /opt/xensource/bin that exists
#   (XSConsoleConfig.py, HelperPath);
# - xen-api installs both scripts to $(OPTDIR)/bin = /opt/xensource/bin (scripts/Makefile,
#   OPTDIR's default in configure.ml), and its cron wrapper scripts/backup-metadata-cron
#   (which xsconsole's plugins-base/XSFeatureDRSchedule.py links from
#   /etc/cron.{daily,weekly,monthly}/backup-metadata) runs /opt/xensource/bin/xe-backup-metadata -c;
# - xsmeta itself goes to /usr/bin, on cron's PATH (/usr/bin:/bin), where xen-api's Makefile
#   links xe.
#
# What it does, recorded in /opt/xsmeta/installed-files:
# - copies the release to /opt/xsmeta (app/, node/ when bundled, uninstall.sh, common.sh,
#   release.json);
# - in each of those folders, moves an existing xe-backup-metadata / xe-restore-metadata to
#   <name>.xsmeta-orig and writes a small launcher in its place; /usr/bin/xsmeta likewise.
# Installing again (an upgrade) keeps the true originals: a launcher of ours is never moved
# aside. /opt/xsmeta/uninstall.sh puts everything back.
set -eu

SELF=install.sh
HERE=$(cd "$(dirname "$0")" && pwd)
[ -f "$HERE/common.sh" ] || {
  echo "install.sh: $HERE holds no release (no common.sh): run the install.sh of an unpacked release" >&2
  exit 1
}
# shellcheck source=common.sh
. "$HERE/common.sh"
NODE=

usage() {
  cat <<'USAGE'
Usage: install.sh [--root DIR] [--node PATH]
Installs xsmeta in place of xe-backup-metadata and xe-restore-metadata (kept as
<name>.xsmeta-orig) and as /usr/bin/xsmeta; /opt/xsmeta/uninstall.sh undoes it.
  --root DIR   install under DIR instead of / (the launchers then point into DIR)
  --node PATH  the Node.js (>= 20.19) to run with (default: the release's own, or
               when it bundles none, the node found on PATH)
USAGE
}

while [ $# -gt 0 ]; do
  if root_arg "$@"; then
    shift "$SHIFT"
    continue
  fi
  case $1 in
  --node)
    [ $# -ge 2 ] && [ -n "$2" ] || usage_error "--node needs a path"
    NODE=$2
    shift 2
    ;;
  --node=?*)
    NODE=${1#--node=}
    shift
    ;;
  -h | --help)
    usage
    exit 0
    ;;
  *) usage_error "unknown argument '$1'" ;;
  esac
done

[ -f "$HERE/app/bin/xsmeta.js" ] || die "$HERE holds no release (no app/bin/xsmeta.js): run the install.sh of an unpacked release"
resolve_root " (it replaces files under /opt and /usr/bin)"
case $R in *"'"*) die "--root must not contain a quote" ;; esac

# The runtime: --node, else the bundled one, else the node on PATH; Node.js >= 20.19.
if [ -z "$NODE" ] && [ -x "$HERE/node/bin/node" ]; then
  CHECK_NODE=$HERE/node/bin/node
  RUN_NODE=$DEST/node/bin/node
else
  [ -n "$NODE" ] || NODE=$(command -v node || true)
  [ -n "$NODE" ] || die "this release bundles no Node.js and none was found: install Node.js >= 20.19 and pass --node PATH, or use a release built with the runtime"
  case $NODE in /*) ;; *) NODE=$(cd "$(dirname "$NODE")" && pwd)/$(basename "$NODE") ;; esac
  case $NODE in *"'"*) die "--node must not contain a quote" ;; esac
  CHECK_NODE=$NODE
  RUN_NODE=$NODE
fi
"$CHECK_NODE" -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 3)' ||
  die "$CHECK_NODE cannot run xsmeta: it needs Node.js >= 20.19 that runs on this machine; nothing was changed"
# Before anything is changed: the CLI starts from the release with that runtime.
VERSION=$("$CHECK_NODE" "$HERE/app/bin/xsmeta.js" --version) ||
  die "xsmeta does not start from $HERE with $CHECK_NODE; nothing was changed"

# Which folders the callers look in (see the top of this file).
TARGETS=
for d in /usr/lib/xcp/bin /opt/xensource/bin; do
  if [ -d "$R$d" ]; then
    TARGETS=$d
    break
  fi
done
[ -n "$TARGETS" ] || die "neither /usr/lib/xcp/bin nor /opt/xensource/bin exists${R:+ under $R}: is this a XenServer / XCP-ng host?"
if [ "$TARGETS" != /opt/xensource/bin ] && [ -d "$R/opt/xensource/bin" ]; then
  TARGETS="$TARGETS /opt/xensource/bin"
fi

record() {
  grep -qxF "$1" "$RECORD" || echo "$1" >>"$RECORD"
}
# The top-most folder of $1 that is missing (empty when $1 exists).
missing_top() {
  d=$1
  top=
  while [ ! -d "$R$d" ]; do
    top=$d
    d=$(dirname "$d")
  done
  echo "$top"
}
# Creates folder $1, recording the folders it creates: uninstall.sh removes them again.
make_dir() {
  top=$(missing_top "$1")
  mkdir -p "$R$1"
  if [ -n "$top" ]; then record "dir $top"; fi
}

echo "Installing xsmeta $VERSION to $DEST"
# The release, copied in (a new copy replaces an older one whole). $PREFIX, with the record in
# it, goes at uninstall; a folder above it made here is recorded.
above=$(missing_top "$(dirname "$PREFIX")")
mkdir -p "$DEST"
: >>"$RECORD"
if [ -n "$above" ]; then record "dir $above"; fi
for part in app node; do
  rm -rf "$DEST/$part.new"
  if [ -d "$HERE/$part" ]; then
    cp -R "$HERE/$part" "$DEST/$part.new"
    rm -rf "$DEST/$part"
    mv "$DEST/$part.new" "$DEST/$part"
  else
    rm -rf "$DEST/$part"
  fi
done
for f in uninstall.sh common.sh release.json; do
  cp "$HERE/$f" "$DEST/$f.new"
  mv -f "$DEST/$f.new" "$DEST/$f"
done
chmod 755 "$DEST/uninstall.sh"

# $1: the command's path on the host; $2: the command it runs.
place() {
  p=$R$1
  if is_ours "$p"; then
    : # installed before: the original is already aside
  elif [ -e "$p" ] || [ -L "$p" ]; then
    # The original, or a newer one that an update of the host put over our launcher.
    mv -f "$p" "$p.xsmeta-orig"
    record "moved $1"
    echo "  $1 -> $1.xsmeta-orig"
  else
    record "created $1"
  fi
  cat >"$p.xsmeta-new" <<LAUNCHER
#!/bin/sh
$MARK
# Installed by xsmeta's install.sh; the original (if any) is $1.xsmeta-orig, which
# $PREFIX/uninstall.sh puts back.
exec '$RUN_NODE' '$DEST/app/bin/$2.js' "\$@"
LAUNCHER
  chmod 755 "$p.xsmeta-new"
  mv -f "$p.xsmeta-new" "$p"
  echo "  $1: xsmeta's $2"
}

for d in $TARGETS; do
  place "$d/xe-backup-metadata" xe-backup-metadata
  place "$d/xe-restore-metadata" xe-restore-metadata
done
make_dir /usr/bin
place /usr/bin/xsmeta xsmeta
echo "Done. To undo: $DEST/uninstall.sh${R:+ --root $R}"
