#!/usr/bin/env bash
# The system packages `make test` needs beyond Rust and Python: nginx, the real HTTP server
# with Range support that the CLI's and the Python package's URL tests start on 127.0.0.1.
# Installs what is missing where it can (root with apt-get); otherwise stops at once with one
# line saying what to install, before anything is built.
set -euo pipefail

have_nginx() {
    command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]
}

if have_nginx; then
    exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "system-packages: installing nginx (the HTTP tests' server) with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq nginx >/dev/null
    have_nginx && exit 0
fi
echo "make test needs nginx for its HTTP tests: install it (e.g. 'sudo apt-get install nginx'), or run 'make test-quick', which does not" >&2
exit 1
