#!/bin/sh
# docker compose's one-shot `secrets` service (docker-compose.yml), so that the first
# `docker compose up` needs no .env: it writes the device-token secret and the Postgres
# password into their volumes, then exits. Each file holds .env's value when one is set
# (DEVICE_TOKEN_SECRET, POSTGRES_PASSWORD), otherwise what it already held, otherwise a
# new random secret (32 bytes as 64 hex digits: safe in any URL or config). The other
# services start only once this has finished and mount the volumes read-only: each secret
# has this one writer, the apps find the token secret in place (resolveTokenSecret in
# packages/auth never has to create it), and .env's values reach every reader through
# the same files.
#
# Environment: DEVICE_TOKEN_SECRET_FILE and POSTGRES_PASSWORD_FILE, where to write;
# DEVICE_TOKEN_SECRET and POSTGRES_PASSWORD, .env's values (empty: none). POSIX sh: it
# runs in busybox, and test/compose.test.ts runs it on the host.
set -eu

# The files are readable by every user (node in the apps, postgres in Postgres): what
# keeps them secret is that each volume is mounted only into the services that need it.
umask 022

# put FILE VALUE: FILE holds VALUE; with VALUE empty, what it holds, or a new secret.
put() {
  file=$1
  value=$2
  if [ -n "$value" ]; then
    from=.env
  elif [ -s "$file" ]; then
    echo "$file: kept"
    return 0
  else
    from=generated
    value=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
  fi
  mkdir -p "$(dirname "$file")"
  # Whole or not at all: a reader sees the old file or the new one.
  printf '%s' "$value" >"$file.new"
  chmod 0444 "$file.new"
  mv -f "$file.new" "$file"
  echo "$file: $from"
}

token=${DEVICE_TOKEN_SECRET:-}
if [ -n "$token" ] && [ "${#token}" -lt 32 ]; then
  echo 'DEVICE_TOKEN_SECRET (.env): must be at least 32 characters, e.g. openssl rand -base64 48' >&2
  exit 1
fi
put "$DEVICE_TOKEN_SECRET_FILE" "$token"
put "$POSTGRES_PASSWORD_FILE" "${POSTGRES_PASSWORD:-}"
