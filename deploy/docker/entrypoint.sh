#!/usr/bin/env bash
# The kantoku images' entrypoint (deploy/docker/). The first argument names a role; any other
# command runs as given (`docker run IMAGE kantoku mv ...`).
#
#   ray-head [RAY START OPTIONS]    a Ray head node; then `serve deploy` of KANTOKU_SERVE_CONFIG
#   ray-worker [RAY START OPTIONS]  a Ray worker node joining RAY_HEAD_ADDRESS (host:port)
#   studio [OPTIONS]                `kantoku studio` on 0.0.0.0:KANTOKU_PORT (8000)
#   avatar [OPTIONS]                `kantoku avatar` on 0.0.0.0:KANTOKU_PORT (8010)
#
# Secrets as files: for NAME_FILE set (NAME a KANTOKU_* setting, or PGPASSWORD), NAME is read
# from that file, as the official Postgres image does; compose mounts them under /run/secrets.
# On KubeRay this script does not run: KubeRay writes the container's command itself.
set -euo pipefail

load_secret_files() {
  local variable name
  for variable in $(compgen -e); do
    case "$variable" in
      KANTOKU_*_FILE | PGPASSWORD_FILE)
        name="${variable%_FILE}"
        export "$name"="$(<"${!variable}")"
        unset "$variable"
        ;;
    esac
  done
}

# Run "$@" until it succeeds, for at most $1 seconds.
retry_for() {
  local seconds="$1"
  shift
  local deadline=$((SECONDS + seconds))
  until "$@"; do
    if ((SECONDS >= deadline)); then
      echo "kantoku-entrypoint: '$*' did not succeed in ${seconds} s" >&2
      return 1
    fi
    sleep 2
  done
}

stop_ray() {
  ray stop >/dev/null 2>&1 || true
  exit 0
}

ray_head() {
  trap stop_ray TERM INT
  ray start --head --block --port=6379 --dashboard-host=0.0.0.0 --disable-usage-stats "$@" &
  local ray_pid=$!
  if [[ -n "${KANTOKU_SERVE_CONFIG:-}" ]]; then
    # The dashboard takes `serve deploy` once the head is up; Serve then builds each
    # application in a task that sees this container's environment.
    retry_for 180 serve deploy --address http://127.0.0.1:8265 "$KANTOKU_SERVE_CONFIG"
  fi
  wait "$ray_pid"
}

ray_worker() {
  trap stop_ray TERM INT
  : "${RAY_HEAD_ADDRESS:?set RAY_HEAD_ADDRESS (host:port of the head, e.g. ray-head:6379)}"
  ray start --block --address="$RAY_HEAD_ADDRESS" --disable-usage-stats "$@" &
  wait "$!"
}

load_secret_files
role="${1:-}"
case "$role" in
  ray-head) shift; ray_head "$@" ;;
  ray-worker) shift; ray_worker "$@" ;;
  studio) shift; exec kantoku studio --host 0.0.0.0 --port "${KANTOKU_PORT:-8000}" "$@" ;;
  avatar) shift; exec kantoku avatar --host 0.0.0.0 --port "${KANTOKU_PORT:-8010}" "$@" ;;
  *) exec "$@" ;;
esac
