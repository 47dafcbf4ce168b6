#!/usr/bin/env bash
# Build FerretDB 1.24.2 from the Go module proxy into a cache outside the clone.
#
# Two changes to the module source, both documented in docs/architecture.md:
#  1. build/version/version.txt is absent from the published module, and the
#     binary panics at start without it; we write the release tag into it.
#  2. The SQLite backend filters `_id` with `_ferretdb_sjson->'$._id'` while its
#     own unique index is on `_ferretdb_sjson->"_id"`: SQLite matches index
#     expressions literally, so every `_id` lookup, update and delete scanned the
#     whole table (3.8 ms find / 233 ms replace at 50k documents). We make the
#     filter use the indexed expression; results are identical, only the plan changes.
set -euo pipefail

VERSION="v1.24.2"
MODULE="github.com/FerretDB/FerretDB"
CACHE_DIR="${INTEROP_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/interop}"
OUT="${1:-$CACHE_DIR/ferretdb-${VERSION#v}-idx/ferretdb}"

if [[ -x "$OUT" ]]; then
  echo "$OUT"
  exit 0
fi

command -v go >/dev/null || { echo "go is required to build FerretDB" >&2; exit 1; }

export GOFLAGS="-mod=mod"
SRC_DIR="$(go mod download -json "$MODULE@$VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
cp -r "$SRC_DIR/." "$WORK/"
chmod -R u+w "$WORK"

echo "$VERSION" > "$WORK/build/version/version.txt"
META="$WORK/internal/backends/sqlite/metadata/metadata.go"
grep -q "IDColumn = DefaultColumn + \"->'\$._id'\"" "$META" || { echo "unexpected FerretDB source: $META" >&2; exit 1; }
sed -i "s|IDColumn = DefaultColumn + \"->'\$._id'\"|IDColumn = DefaultColumn + \`->\"_id\"\`|" "$META"

mkdir -p "$(dirname "$OUT")"
(cd "$WORK" && go build -trimpath -o "$OUT.tmp" ./cmd/ferretdb) >&2
mv "$OUT.tmp" "$OUT"
echo "$OUT"
