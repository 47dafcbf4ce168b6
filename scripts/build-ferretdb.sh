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
#  3. internal/util/resource.Track, a leak detector, records a pprof sample (a stack
#     walk) and sets a finalizer for every document and iterator in release builds
#     too: 14 % of the store's CPU on a read. We make it, and Untrack, return at once
#     unless FerretDB is built in its debug mode.
#  4. The SQLite backend sends `_id` to SQL only when the filter is exactly `{_id: v}`;
#     a filter that names `_id` beside other conditions (`{_id: v, tx: t}`) scanned the
#     table. The handler applies the whole filter to what the backend returns in every
#     command (find, count, update, delete, findAndModify), so narrowing the backend
#     query to that `_id` returns the same results; only the plan changes. The same
#     holds for `{_id: {$in: [v1, v2, ...]}}`, which now reads just those rows
#     (`WHERE _id IN (...)`, served by the unique index) instead of the whole table:
#     one command fetches a page of search candidates or a key's posting slots.
set -euo pipefail

VERSION="v1.24.2"
MODULE="github.com/FerretDB/FerretDB"
CACHE_DIR="${INTEROP_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/interop}"
# The directory name changes whenever the patches below change, so caches never mix builds.
BUILD_ID="${VERSION#v}-interop3-ids"
OUT="${1:-$CACHE_DIR/ferretdb-$BUILD_ID/ferretdb}"

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

RES="$WORK/internal/util/resource/resource.go"
grep -q '^func Track(obj any, token \*Token) {$' "$RES" && grep -q '^func Untrack(obj any, token \*Token) {$' "$RES" \
  || { echo "unexpected FerretDB source: $RES" >&2; exit 1; }
sed -i 's|^func Track(obj any, token \*Token) {$|&\n\tif !debugbuild.Enabled {\n\t\treturn\n\t}|; s|^func Untrack(obj any, token \*Token) {$|&\n\tif !debugbuild.Enabled {\n\t\treturn\n\t}|' "$RES"

COLL="$WORK/internal/backends/sqlite/collection.go"
[[ "$(grep -c '^	if params.Filter.Len() == 1 {$' "$COLL")" == 2 ]] || { echo "unexpected FerretDB source: $COLL" >&2; exit 1; }
sed -i 's|^	if params.Filter.Len() == 1 {$|	if namesIDOnce(params.Filter) {|' "$COLL"
ARGS_LINE='			args = []any{string(must.NotFail(sjson.MarshalSingleValue(v)))}'
[[ "$(grep -cxF "$ARGS_LINE" "$COLL")" == 2 ]] || { echo "unexpected FerretDB source: $COLL" >&2; exit 1; }
# After each `case string, types.ObjectID:` branch, a branch for {$in: [...]} on _id.
awk -v line="$ARGS_LINE" '{ print } $0 == line { print "\t\tcase *types.Document:\n\t\t\tif w, a := idsIn(v.(*types.Document)); w != \"\" {\n\t\t\t\twhereClause, args = w, a\n\t\t\t}" }' \
  "$COLL" > "$COLL.new" && mv "$COLL.new" "$COLL"
cat >> "$COLL" <<'GO'

// namesIDOnce reports whether the filter has exactly one top-level "_id" condition
// (added by the interop build: such a filter's backend query is narrowed to that _id).
func namesIDOnce(filter *types.Document) bool {
	n := 0
	for _, key := range filter.Keys() {
		if key == "_id" {
			n++
		}
	}
	return n == 1
}

// idsIn turns {$in: [ids]} on _id (strings or ObjectIDs, at most 1000) into a WHERE
// clause on the indexed _id column (added by the interop build); "" when it does not apply.
func idsIn(cond *types.Document) (string, []any) {
	keys := cond.Keys()
	if len(keys) != 1 || keys[0] != "$in" {
		return "", nil
	}
	arr, ok := must.NotFail(cond.Get("$in")).(*types.Array)
	if !ok || arr.Len() == 0 || arr.Len() > 1000 {
		return "", nil
	}
	args := make([]any, 0, arr.Len())
	for i := 0; i < arr.Len(); i++ {
		v := must.NotFail(arr.Get(i))
		switch v.(type) {
		case string, types.ObjectID:
			args = append(args, string(must.NotFail(sjson.MarshalSingleValue(v))))
		default:
			return "", nil
		}
	}
	marks := strings.TrimSuffix(strings.Repeat("?, ", len(args)), ", ")
	return fmt.Sprintf(` WHERE %s IN (%s)`, metadata.IDColumn, marks), args
}
GO

mkdir -p "$(dirname "$OUT")"
(cd "$WORK" && go build -trimpath -o "$OUT.tmp" ./cmd/ferretdb) >&2
mv "$OUT.tmp" "$OUT"
echo "$OUT"
