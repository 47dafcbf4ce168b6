#!/usr/bin/env bash
# Build FerretDB 1.24.2 from the Go module proxy into a cache outside the clone.
#
# Four changes, to the module source and to its SQLite driver, all documented in
# docs/architecture.md, each guarded so the build fails on source we did not expect:
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
#  4. The SQLite driver (modernc.org/sqlite v1.32.0) compiles every statement anew and
#     finalizes it after one use: parsing and code generation were 5-9 % of the store's
#     CPU on a single insert, find or replace. We keep up to 32 idle statements per
#     connection, keyed by their exact SQL text: a statement is reset and its bindings
#     cleared instead of finalized, and reused when the same text is prepared again
#     (SQLite recompiles it by itself if the schema changed; one whose last step failed
#     is finalized as before; a statement handed back twice is cached once). Cached
#     statements are finalized when the connection closes. The patched driver file is
#     put in place with a go.mod `replace`.
#  5. The SQLite backend sends `_id` to SQL only when the filter is exactly `{_id: v}`;
#     a filter that names `_id` beside other conditions (`{_id: v, tx: t}`) scanned the
#     table. The handler applies the whole filter to what the backend returns in every
#     command (find, count, update, delete, findAndModify), so narrowing the backend
#     query to that `_id` returns the same results; only the plan changes. The same
#     holds for `{_id: {$in: [v1, v2, ...]}}`, which now reads just those rows
#     (`WHERE _id IN (...)`, served by the unique index) instead of the whole table:
#     one command fetches a page of search candidates or a key's posting slots.
#  6. SQLite allows one writer at a time; FerretDB lets up to 100 pooled connections
#     try, and a writer that finds the database locked waits in SQLite's busy handler,
#     which sleeps 1, 2, 5, 10, 15, 20 ... ms between tries. Under concurrent writes
#     most of a write's time was such sleeping (20 ms of store time for 1.7 ms of CPU
#     per FHIR create at 8 clients). We queue writers on a mutex per database in
#     fsql.DB (its write transactions and statements outside them), so the next writer
#     starts the moment the previous one commits. Commits and fsyncs are unchanged.
set -euo pipefail

VERSION="v1.24.2"
MODULE="github.com/FerretDB/FerretDB"
CACHE_DIR="${INTEROP_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/interop}"
# The directory name changes whenever the patches below change, so caches never mix builds.
BUILD_ID="${VERSION#v}-interop7"
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

# 4: a prepared-statement cache in the SQLite driver.
# (downloaded at the version FerretDB's go.mod requires; a fresh module cache has no copy yet)
SQLITE_MOD="$(cd "$WORK" && go mod download -json modernc.org/sqlite)"
SQLITE_DIR="$(python3 -c 'import json,sys; m=json.load(sys.stdin); assert m["Version"] == "v1.32.0", m["Version"]; print(m["Dir"])' <<<"$SQLITE_MOD")" \
  || { echo "unexpected modernc.org/sqlite version in FerretDB's go.mod" >&2; exit 1; }
# A tree of symlinks to the module's files, our sqlite.go a real file, in place via `replace`.
cp -rs "$SQLITE_DIR" "$WORK/modernc-sqlite"
find "$WORK/modernc-sqlite" -type d -exec chmod u+w {} +
rm "$WORK/modernc-sqlite/sqlite.go"
python3 - "$SQLITE_DIR/sqlite.go" "$WORK/modernc-sqlite/sqlite.go" <<'PY'
import sys
src_path, out_path = sys.argv[1], sys.argv[2]
src = open(src_path).read()

def once(old, new):
    global src
    if src.count(old) != 1:
        sys.exit(f"unexpected modernc.org/sqlite source: {src_path}: {old.splitlines()[0]!r}")
    src = src.replace(old, new)

# The connection's cache of idle statements.
once("\twriteTimeFormat string\n\tbeginMode       string\n}\n",
     "\twriteTimeFormat string\n\tbeginMode       string\n\n"
     "\tstmts map[string]uintptr // interop: idle prepared statements by SQL text\n}\n")
# Prepare: take a cached statement whose text is exactly the remaining SQL.
once("func (c *conn) prepareV2(zSQL *uintptr) (pstmt uintptr, err error) {\n",
     "func (c *conn) prepareV2(zSQL *uintptr) (pstmt uintptr, err error) {\n"
     "\tif sql := libc.GoString(*zSQL); c.stmts[sql] != 0 { // interop: reuse a cached statement\n"
     "\t\tpstmt = c.stmts[sql]\n\t\tdelete(c.stmts, sql)\n\t\t*zSQL += uintptr(len(sql))\n\t\treturn pstmt, nil\n\t}\n\n")
# Finalize: reset (reporting the statement's error as finalize would), clear bindings, cache.
once("func (c *conn) finalize(pstmt uintptr) error {\n",
     "func (c *conn) finalize(pstmt uintptr) error {\n"
     "\tif pstmt != 0 && c.db != 0 { // interop: reset and cache the statement instead\n"
     "\t\tif rc := sqlite3.Xsqlite3_reset(c.tls, pstmt); rc != sqlite3.SQLITE_OK {\n"
     "\t\t\terr := c.errstr(rc)\n\t\t\tsqlite3.Xsqlite3_finalize(c.tls, pstmt)\n\t\t\treturn err\n\t\t}\n"
     "\t\tsqlite3.Xsqlite3_clear_bindings(c.tls, pstmt)\n"
     "\t\tif sql := libc.GoString(sqlite3.Xsqlite3_sql(c.tls, pstmt)); c.stmts[sql] == 0 {\n"
     "\t\t\tif c.stmts == nil {\n\t\t\t\tc.stmts = make(map[string]uintptr)\n\t\t\t}\n"
     "\t\t\tfor k, p := range c.stmts {\n\t\t\t\tif len(c.stmts) < 32 {\n\t\t\t\t\tbreak\n\t\t\t\t}\n"
     "\t\t\t\tsqlite3.Xsqlite3_finalize(c.tls, p)\n\t\t\t\tdelete(c.stmts, k)\n\t\t\t}\n"
     "\t\t\tc.stmts[sql] = pstmt\n\t\t\treturn nil\n\t\t} else if c.stmts[sql] == pstmt {\n"
     "\t\t\treturn nil // finalized twice (newRows' error path): it is cached already\n\t\t}\n\t}\n\n")
# Rows.Close hands its statement back once, even if called twice.
once("\tr.allocs = nil\n\treturn r.c.finalize(r.pstmt)\n}\n",
     "\tr.allocs = nil\n\tpstmt := r.pstmt\n\tr.pstmt = 0 // interop: never cache a statement twice\n\treturn r.c.finalize(pstmt)\n}\n")
# Close: finalize the cached statements first.
once("\tif c.db != 0 {\n\t\tif err := c.closeV2(c.db); err != nil {\n",
     "\tif c.db != 0 {\n\t\tfor k, p := range c.stmts { // interop: finalize cached statements\n"
     "\t\t\tsqlite3.Xsqlite3_finalize(c.tls, p)\n\t\t\tdelete(c.stmts, k)\n\t\t}\n"
     "\t\tif err := c.closeV2(c.db); err != nil {\n")
open(out_path, "w").write(src)
PY

# 5: _id conditions beside others, and _id $in lists, narrow the SQL query.
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

# 6: writers of one database queue on a mutex instead of sleeping in SQLite's busy handler.
FSQL="$WORK/internal/util/fsql/db.go"
grep -qxF '	BatchSize int' "$FSQL" && grep -qxF 'func (db *DB) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {' "$FSQL" \
  && grep -qxF 'func (db *DB) InTransaction(ctx context.Context, f func(*Tx) error) (err error) {' "$FSQL" && grep -qxF '	"log/slog"' "$FSQL" \
  || { echo "unexpected FerretDB source: $FSQL" >&2; exit 1; }
sed -i 's|^	BatchSize int$|&\n\n	writeMu sync.Mutex // interop: one writer at a time, queued in Go|' "$FSQL"
sed -i 's|^	"log/slog"$|&\n	"sync"|' "$FSQL"
sed -i 's|^func (db \*DB) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {$|&\n	db.writeMu.Lock()\n	defer db.writeMu.Unlock()\n|' "$FSQL"
sed -i 's|^func (db \*DB) InTransaction(ctx context.Context, f func(\*Tx) error) (err error) {$|&\n	db.writeMu.Lock()\n	defer db.writeMu.Unlock()\n|' "$FSQL"

mkdir -p "$(dirname "$OUT")"
(cd "$WORK" && go mod edit -replace modernc.org/sqlite=./modernc-sqlite && go build -trimpath -o "$OUT.tmp" ./cmd/ferretdb) >&2
mv "$OUT.tmp" "$OUT"
echo "$OUT"
