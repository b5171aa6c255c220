# shellcheck shell=bash
# The private dockerd that scripts/bench-image and scripts/parity-image build upstream's
# Containerfile with. Sourced (not run); the caller sets ROOT (the repository), WORK (a scratch dir
# it owns; everything here lives under $WORK/docker) and has sourced scripts/test-env/env.sh.
#
#   docker_env_install         install Debian's docker.io (dockerd + CLI 20.10) if dockerd is missing
#   docker_env_start           start dockerd in the background:
#                                dockerd --iptables=false --bridge=none --storage-driver=vfs
#                                  --insecure-registry 127.0.0.1:5000 --data-root $WORK/docker/root
#                                  --exec-root $WORK/docker/exec -H unix://$WORK/docker/docker.sock
#                              (DOCKER_HOST points at it, DOCKER_BUILDKIT=1), and the mock platform
#                              scripts/bench/mock-platform.py on 127.0.0.1 (api_url) that upstream's
#                              indexer stage talks to (via --network host)
#   docker_env_stop            stop both (by pid) and drop the mounts dockerd leaves under $WORK
#   docker_env_host_net        read the host's npm CA file / registry and *_PROXY variables
#                              (cafile, npm_registry, proxy_args)
#   docker_env_pull [LOG]      pull the base (base_ref) from the loopback registry
#   docker_env_shim [LOG]      when the host has an npm CA file, build the "CA shim" base image on it
#                              (from_ref=shim_ref; else from_ref=base_ref)
#   docker_env_containerfile SRC DST [SED-EXPR...]
#                              upstream's Containerfile with the FROM line on from_ref and the
#                              `# syntax=` line dropped (+ the caller's extra sed expressions)
#   docker_env_build CTX CF TAG HASH REF LOG
#                              `docker build` of CF in CTX with the build args below; returns its rc
#   docker_env_clear           remove all images and the BuildKit cache
#
# The CA shim: this host reaches the npm registry and PyPI through a TLS-intercepting egress whose
# CA the container does not trust. liftoff binds the host's CA file read-only into its build steps
# (npm i; RUN steps: SSL_CERT_FILE/REQUESTS_CA_BUNDLE/PIP_CERT/NODE_EXTRA_CA_CERTS...), and never
# puts it in the image. upstream's Containerfile has no ARG for it, so the docker side gets the same
# file through a base image built `FROM <base>` with, as FILES only (no ENV, so the image config
# stays upstream's):
#   /etc/liftoff-bench/ca.pem   the host's npm `cafile` (or NODE_EXTRA_CA_CERTS)
#   /etc/pip.conf               [global] cert = /etc/liftoff-bench/ca.pem  (pip, venvs included)
#   /home/node/.npmrc           cafile=/etc/liftoff-bench/ca.pem (+ registry=<host npm registry>
#                               when set) for the build stage's `npm i` (USER node)
# All three are outside /usr, /opt and /app. The shim is built untimed, after the pull.
# *_PROXY variables, if set, are passed as build-args (Docker's predefined proxy ARGs).
#
# Build args (upstream 3.3.17's self-hosted command, upstream-build.md §4.4):
#   docker build -f CF --no-cache --platform linux/amd64 --network host
#     --build-arg TRIGGER_PROJECT_ID=x --build-arg TRIGGER_DEPLOYMENT_ID=x
#     --build-arg TRIGGER_DEPLOYMENT_VERSION=x --build-arg TRIGGER_CONTENT_HASH=HASH
#     --build-arg TRIGGER_PROJECT_REF=REF --build-arg TRIGGER_API_URL=<mock platform>
#     --build-arg TRIGGER_SECRET_KEY=x [proxy build-args] --progress plain -t TAG .
# The full file is built (base, build, indexer, final); the final stage is the last one.

D=/usr/bin/docker # Debian's CLI (another `docker` may come first on PATH)
base_ref=127.0.0.1:5000/library/node:21-bookworm-slim
shim_ref=liftoff-bench/node-ca:21-bookworm-slim
from_ref=$base_ref
dockerd_pid= mock_pid= api_url= cafile= npm_registry=
proxy_args=()

docker_env_install() {
  if [ ! -x /usr/sbin/dockerd ] || [ ! -x "$D" ]; then
    echo "installing Debian docker.io" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker.io >/dev/null
  fi
}

docker_env_start() {
  mkdir -p "$WORK/docker"
  /usr/sbin/dockerd --iptables=false --bridge=none --storage-driver=vfs \
    --insecure-registry 127.0.0.1:5000 --data-root "$WORK/docker/root" --exec-root "$WORK/docker/exec" \
    --pidfile "$WORK/docker/dockerd.pid" -H "unix://$WORK/docker/docker.sock" \
    >"$WORK/docker/dockerd.log" 2>&1 &
  dockerd_pid=$!
  export DOCKER_HOST="unix://$WORK/docker/docker.sock" DOCKER_BUILDKIT=1
  for _ in $(seq 60); do "$D" info >/dev/null 2>&1 && break; sleep 0.5; done
  "$D" info >/dev/null || { tail -20 "$WORK/docker/dockerd.log" >&2; return 1; }

  rm -f "$WORK/docker/mock.port"
  python3 "$ROOT/scripts/bench/mock-platform.py" "$WORK/docker/mock.port" "$WORK/docker/mock-platform.log" &
  mock_pid=$!
  for _ in $(seq 50); do [ -s "$WORK/docker/mock.port" ] && break; sleep 0.1; done
  api_url="http://127.0.0.1:$(cat "$WORK/docker/mock.port")"
}

docker_env_stop() {
  [ -n "$mock_pid" ] && kill "$mock_pid" 2>/dev/null
  if [ -n "$dockerd_pid" ]; then
    kill "$dockerd_pid" 2>/dev/null
    for _ in $(seq 60); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 0.5; done
  fi
  mock_pid= dockerd_pid=
  # dockerd leaves its netns bind mount behind
  awk -v w="$WORK/" 'index($2, w) == 1 {print $2}' /proc/self/mounts | sort -r | xargs -r -n1 umount -l
  return 0
}

docker_env_host_net() {
  cafile= npm_registry=
  if command -v npm >/dev/null; then
    local c
    c=$(npm config get cafile 2>/dev/null || true)
    [ -n "$c" ] && [ "$c" != null ] && [ -f "$c" ] && cafile=$c
    npm_registry=$(npm config get registry 2>/dev/null || true)
  fi
  [ -z "$cafile" ] && [ -n "${NODE_EXTRA_CA_CERTS:-}" ] && [ -f "$NODE_EXTRA_CA_CERTS" ] && cafile=$NODE_EXTRA_CA_CERTS
  proxy_args=()
  local v
  for v in HTTP_PROXY HTTPS_PROXY NO_PROXY ALL_PROXY http_proxy https_proxy no_proxy all_proxy; do
    [ -n "${!v:-}" ] && proxy_args+=(--build-arg "$v=${!v}")
  done
  return 0
}

docker_env_pull() { # [log]
  "$D" pull -q "$base_ref" >>"${1:-/dev/null}" 2>&1
}

docker_env_shim() { # [log]
  local log=${1:-/dev/null}
  [ -n "$cafile" ] || { from_ref=$base_ref; return 0; }
  mkdir -p "$WORK/docker/shim"
  cp "$cafile" "$WORK/docker/shim/ca.pem"
  printf '[global]\ncert = /etc/liftoff-bench/ca.pem\n' >"$WORK/docker/shim/pip.conf"
  {
    echo "cafile=/etc/liftoff-bench/ca.pem"
    [ -n "$npm_registry" ] && [ "$npm_registry" != null ] && echo "registry=$npm_registry"
  } >"$WORK/docker/shim/npmrc"
  {
    echo "FROM $base_ref"
    echo "COPY ca.pem /etc/liftoff-bench/ca.pem"
    echo "COPY pip.conf /etc/pip.conf"
    echo "COPY --chown=1000:1000 npmrc /home/node/.npmrc"
  } >"$WORK/docker/shim/Dockerfile"
  "$D" build -q -t "$shim_ref" "$WORK/docker/shim" >>"$log" 2>&1
  from_ref=$shim_ref
}

docker_env_containerfile() { # src dst [sed-expr...]
  local src=$1 dst=$2 e; shift 2
  local args=(-e '/^# syntax=/d' -e "s|^FROM node:21-bookworm-slim@sha256:[0-9a-f]\{64\} AS base\$|FROM $from_ref AS base|")
  for e in "$@"; do args+=(-e "$e"); done
  sed "${args[@]}" "$src" >"$dst"
  grep -q "^FROM $from_ref AS base\$" "$dst" || { echo "FROM line not rewritten in $dst" >&2; return 1; }
}

docker_env_build() { # ctx cf tag hash ref log
  local ctx=$1 cf=$2 tag=$3 hash=$4 ref=$5 log=$6
  (cd "$ctx" && "$D" build -f "$cf" --no-cache --platform linux/amd64 --network host \
    --build-arg TRIGGER_PROJECT_ID=x --build-arg TRIGGER_DEPLOYMENT_ID=x \
    --build-arg TRIGGER_DEPLOYMENT_VERSION=x --build-arg "TRIGGER_CONTENT_HASH=$hash" \
    --build-arg "TRIGGER_PROJECT_REF=$ref" --build-arg "TRIGGER_API_URL=$api_url" \
    --build-arg TRIGGER_SECRET_KEY=x ${proxy_args[@]+"${proxy_args[@]}"} \
    --progress plain -t "$tag" .) >"$log" 2>&1
}

docker_env_clear() {
  "$D" ps -aq | xargs -r "$D" rm -f >/dev/null 2>&1 || true
  "$D" image ls -q | sort -u | xargs -r "$D" rmi -f >/dev/null 2>&1 || true
  "$D" builder prune -af >/dev/null
}
