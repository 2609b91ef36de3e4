#!/usr/bin/env bash
# Backs up everything gradient-pipeline cannot rebuild, then copies it off the host:
#   1. the analytics DuckDB file (scripts/gradient_backup_duckdb.sh: consistent copy while the pipeline runs);
#   2. the operations book (ledger, halt, high-water mark, alert state): `gradient-pipeline book backup`
#      (SQLite online backup, or pg_dump for PostgreSQL);
#   3. off-host copy when GRADIENT_BACKUP_REMOTE is set: `rsync -a` to a host:path, or `rclone copy` when it
#      starts with `rclone:` (e.g. rclone:s3-backups/gradient).
# Local copies older than GRADIENT_BACKUP_KEEP_DAYS (default 30) are deleted. Exit code non-zero if any step failed.
#   scripts/gradient_backup.sh [BACKUP_DIR]       (default ./backups)
set -euo pipefail
cd "$(dirname "$0")/.."
export TZ=UTC
backup_dir="${1:-backups}"
mkdir -p "$backup_dir"
if command -v uv >/dev/null 2>&1; then RUN=(uv run --frozen --no-sync); else RUN=(env PATH="$PWD/.venv/bin:$PATH"); fi

scripts/gradient_backup_duckdb.sh "" "$backup_dir"
"${RUN[@]}" gradient-pipeline book backup --to "$backup_dir"

keep_days="${GRADIENT_BACKUP_KEEP_DAYS:-30}"
find "$backup_dir" -maxdepth 1 -name 'gradient-*' -mtime +"$keep_days" -delete

remote="${GRADIENT_BACKUP_REMOTE:-}"
if [ -n "$remote" ]; then
  case "$remote" in
    rclone:*) rclone copy "$backup_dir" "${remote#rclone:}" ;;
    *) rsync -a "$backup_dir"/ "$remote" ;;
  esac
  echo "backup: copied $backup_dir to $remote"
else
  echo "backup: GRADIENT_BACKUP_REMOTE is not set; backups stay on this host only" >&2
fi
