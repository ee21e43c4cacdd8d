#!/usr/bin/env bash
# The system packages `make test` needs beyond Rust and Python:
# - nginx, the real HTTP server with Range support that the CLI's and the Python package's
#   URL tests start on 127.0.0.1 (required);
# - fuse3 (libfuse3 and fusermount3), for the test that mounts a real FUSE filesystem to check
#   backend="auto" (optional: without it, or without /dev/fuse, that one test skips with the
#   reason).
# Installs what is missing where it can (root with apt-get); otherwise stops at once with one
# line saying what to install, before anything is built.
set -euo pipefail

have_nginx() {
    command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]
}

have_fuse3() {
    command -v fusermount3 >/dev/null 2>&1 && ldconfig -p 2>/dev/null | grep -q 'libfuse3\.so'
}

can_apt() {
    [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1
}

missing=()
have_nginx || missing+=(nginx)
have_fuse3 || missing+=(fuse3)
if [ "${#missing[@]}" -gt 0 ] && can_apt; then
    echo "system-packages: installing ${missing[*]} with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # fuse3 is optional: a machine without it still runs every other test.
    apt-get install -y -qq nginx >/dev/null || true
    if [[ " ${missing[*]} " == *" fuse3 "* ]]; then
        apt-get install -y -qq fuse3 >/dev/null ||
            echo "system-packages: fuse3 could not be installed: the FUSE mount test will skip" >&2
    fi
fi
have_nginx && exit 0
echo "make test needs nginx for its HTTP tests: install it (e.g. 'sudo apt-get install nginx'), or run 'make test-quick', which does not" >&2
exit 1
