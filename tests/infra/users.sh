#!/usr/bin/env bash
# users.sh add NAME_DIR USER PASS: add or replace USER in a test Dovecot
# instance's passwd-file (NAME_DIR/users, e.g. $SRC_DIR). Dovecot rereads the
# file when it changes, so no restart is needed.
set -euo pipefail

if [[ $# -ne 4 || $1 != add ]]; then
  echo "usage: users.sh add NAME_DIR USER PASS" >&2
  exit 2
fi
dir=$2 user=$3 pass=$4
[[ -f $dir/dovecot.conf ]] || { echo "users.sh: $dir is not a stack instance dir" >&2; exit 1; }
if [[ $user == *[:\ ]* || $pass == *:* || $pass == *$'\n'* ]]; then
  echo "users.sh: user must not contain ':' or spaces, password must not contain ':'" >&2
  exit 1
fi

file=$dir/users
touch "$file"
old_mtime=$(stat -c %Y "$file")
tmp=$(mktemp "$file.XXXXXX")
awk -F: -v u="$user" '$1 != u' "$file" >"$tmp"
printf '%s:{PLAIN}%s::::::\n' "$user" "$pass" >>"$tmp"
chmod 600 "$tmp"
mv "$tmp" "$file"
# Dovecot rereads a passwd-file when its mtime (in whole seconds) changes: two
# edits within one second would leave the second unseen, so every edit moves
# the mtime forward by at least a second.
now=$(date +%s)
touch -d "@$(( now > old_mtime ? now : old_mtime + 1 ))" "$file"
