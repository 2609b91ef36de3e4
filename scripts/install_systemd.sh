#!/usr/bin/env bash
# Install gradient-pipeline's systemd units: the Dagster webserver and daemon, the watchdog timer and the backup
# timer. Renders deploy/systemd/* with this checkout's path, checks them with `systemd-analyze verify`, and (when
# writing to /etc/systemd/system) reloads systemd. Enabling is left to you — see docs/DEPLOYMENT.md.
#
#   scripts/install_systemd.sh [--dest DIR] [--env-file FILE] [--user USER]
#
# Defaults: --dest /etc/systemd/system, --env-file /etc/gradient/env, --user gradient.
set -euo pipefail
cd "$(dirname "$0")/.."
project_dir="$PWD"
dest=/etc/systemd/system
env_file=/etc/gradient/env
user=gradient
while [ $# -gt 0 ]; do
  case "$1" in
    --dest) dest="$2"; shift 2 ;;
    --env-file) env_file="$2"; shift 2 ;;
    --user) user="$2"; shift 2 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "install_systemd: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [ ! -x "$project_dir/.venv/bin/dagster-daemon" ]; then
  echo "install_systemd: $project_dir/.venv is missing; run 'uv sync --frozen' in $project_dir first" >&2
  exit 2
fi
mkdir -p "$dest"
units=()
for template in deploy/systemd/*.service deploy/systemd/*.timer; do
  name="$(basename "$template")"
  sed -e "s#@PROJECT_DIR@#${project_dir}#g" -e "s#@ENV_FILE@#${env_file}#g" -e "s#@USER@#${user}#g" \
    "$template" > "$dest/$name"
  units+=("$dest/$name")
done
if command -v systemd-analyze >/dev/null 2>&1; then
  systemd-analyze verify "${units[@]}"
fi
echo "installed ${#units[@]} units in $dest: $(cd "$dest" && ls gradient-* | tr '\n' ' ')"
if [ "$dest" = /etc/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
  systemctl daemon-reload
  echo "next: systemctl enable --now gradient-dagster-daemon gradient-dagster-webserver gradient-watchdog.timer gradient-backup.timer"
fi
