#!/bin/sh
# Undoes xsmeta's install.sh, from what it recorded in /opt/xsmeta/installed-files: removes
# each launcher it wrote, moves each original (<path>.xsmeta-orig) back, removes the cron entry
# `xsmeta schedule` installed (/etc/cron.d/xsmeta: it would run a removed program), the
# folders install.sh made, and /opt/xsmeta. The event history in /var/lib/xsmeta (or
# $XSMETA_STATE_DIR) is data, not the program: it is left, and said so.
set -eu

SELF=uninstall.sh
# shellcheck source=common.sh
. "$(cd "$(dirname "$0")" && pwd)/common.sh"

while [ $# -gt 0 ]; do
  if root_arg "$@"; then
    shift "$SHIFT"
    continue
  fi
  case $1 in
  -h | --help)
    echo "Usage: uninstall.sh [--root DIR]"
    echo "Puts back what xsmeta's install.sh (with the same --root) replaced, and removes xsmeta."
    exit 0
    ;;
  *) usage_error "unknown argument '$1'" ;;
  esac
done

resolve_root ""
[ -f "$RECORD" ] || die "xsmeta is not installed${R:+ under $R} (no $RECORD)"

# Read it whole first: it lives in $DEST, which goes last.
entries=$(cat "$RECORD")
dirs=
echo "Removing xsmeta from $DEST"
while read -r what path; do
  case $what in
  moved | created)
    p=$R$path
    if is_ours "$p"; then rm -f "$p"; fi
    if [ -e "$p.xsmeta-orig" ] || [ -L "$p.xsmeta-orig" ]; then
      if [ -e "$p" ] || [ -L "$p" ]; then
        # Not ours: an update of the host put a newer one there. Keep it.
        echo "  $path is not xsmeta's launcher (a newer upstream one?): kept; the older original stays as $path.xsmeta-orig"
      else
        mv "$p.xsmeta-orig" "$p"
        echo "  $path: the original is back"
      fi
    else
      echo "  $path: removed"
    fi
    ;;
  dir) dirs="$path $dirs" ;; # the deepest first
  '') ;;
  *) echo "uninstall.sh: ignoring an unknown line of $RECORD: $what $path" >&2 ;;
  esac
done <<ENTRIES
$entries
ENTRIES

cron=$R/etc/cron.d/xsmeta
if [ -f "$cron" ] && grep -q "^# Installed by 'xsmeta schedule" "$cron"; then
  rm -f "$cron"
  echo "  /etc/cron.d/xsmeta (xsmeta's schedule): removed"
fi
rm -rf "$DEST"
for d in $dirs; do
  # Made by install.sh; left if something else has been put in it since.
  find "$R$d" -depth -type d -empty -delete 2>/dev/null || true
  if [ ! -e "$R$d" ]; then echo "  $d: removed"; fi
done
echo "Done. The event history (/var/lib/xsmeta or \$XSMETA_STATE_DIR) is left; remove it by hand if unwanted."
