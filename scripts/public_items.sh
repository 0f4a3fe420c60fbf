#!/usr/bin/env bash
# The public API of each library crate, as rustdoc lists it (all.html: every
# public struct, enum, trait, function, type alias, constant and module item,
# methods not counted), so docs/ARCHITECTURE.md's counts can be checked.
# usage: scripts/public_items.sh [-v | --check]   (-v also lists the items;
#        --check fails when docs/ARCHITECTURE.md's table says otherwise)
set -euo pipefail
cd "$(dirname "$0")/.."
crates=(ash-mih ash-tantivy ash-image ash-encoder)
args=()
for c in "${crates[@]}"; do args+=(-p "$c"); done
cargo doc --locked --no-deps --quiet "${args[@]}"
status=0
for c in "${crates[@]}"; do
  page="target/doc/${c//-/_}/all.html"
  items=$(grep -o '<li><a href="[^"]*">[^<]*' "$page" | sed 's/.*">//')
  count=$(wc -l <<<"$items")
  printf '%-12s %3d public items\n' "$c" "$count"
  if [ "${1:-}" = -v ]; then sed 's/^/    /' <<<"$items"; fi
  if [ "${1:-}" = --check ]; then
    documented=$(grep -E "^\| \`$c\` \| [0-9]+ \|" docs/ARCHITECTURE.md | cut -d'|' -f3 | tr -d ' ')
    if [ "$documented" != "$count" ]; then
      echo "docs/ARCHITECTURE.md says $c has ${documented:-no count of} public items; it has $count" >&2
      status=1
    fi
  fi
done
exit $status
