# Test-environment settings for the image tests. Source it (bash/sh):
#   . scripts/test-env/env.sh
# scripts/test-env/setup (run by scripts/install-test-deps) provides what these point at.
_liftoff_test_cache=${LIFTOFF_TEST_CACHE:-/var/cache/liftoff-test}
# Loopback registry, plain HTTP, no auth; it serves the node:21-bookworm-slim stand-in.
export LIFTOFF_TEST_REGISTRY=127.0.0.1:5000
# Same, with htpasswd basic auth (Basic challenge, not the token flow).
export LIFTOFF_TEST_AUTH_REGISTRY=127.0.0.1:5001
export LIFTOFF_TEST_AUTH_USERNAME=testuser
export LIFTOFF_TEST_AUTH_PASSWORD=testpass
export LIFTOFF_TEST_BASE_IMAGE=127.0.0.1:5000/library/node:21-bookworm-slim
# The same image as an OCI image layout: <layout dir>:<tag>
export LIFTOFF_TEST_BASE_OCI=$_liftoff_test_cache/base-image/oci:21-bookworm-slim
# liftoff's Docker Hub mirror setting: docker.io/library/node:21-bookworm-slim resolves here.
export LIFTOFF_REGISTRY_MIRRORS=docker.io=http://127.0.0.1:5000
# Loopback HTTP server (scripts/test-env/local-repo) with stand-ins for what the
# audioWaveform and puppeteer extensions download: mirror the URL prefixes
# https://github.com/, https://dl-ssl.google.com/ and http://dl.google.com/ onto it.
export LIFTOFF_TEST_FILES_URL=http://127.0.0.1:${LIFTOFF_TEST_FILES_PORT:-5080}
# Its document root; audiowaveform.sha256 there holds the sha256 (hex) of the served
# bbc/audiowaveform/releases/download/1.10.1/audiowaveform_1.10.1-1-12_amd64.deb.
export LIFTOFF_TEST_FILES_ROOT=$_liftoff_test_cache/local-repo/www
# Throwaway PostgreSQL (scripts/test-env/postgres), trust auth; tests createdb their own database.
export LIFTOFF_TEST_PG_URL=postgresql://postgres@127.0.0.1:${LIFTOFF_TEST_PG_PORT:-5433}
# Private dockerd (scripts/test-env/dockerd) for --load-image; tests set DOCKER_HOST to it.
export LIFTOFF_TEST_DOCKER_HOST=unix://$_liftoff_test_cache/dockerd/docker.sock
unset _liftoff_test_cache
