#!/bin/sh
# One-shot: the bucket Landform stores files in, and an access key of its
# own (read-write), created with MinIO's client. Safe to run again.
set -eu

: "${MINIO_ROOT_USER:?}" "${MINIO_ROOT_PASSWORD:?}" "${S3_BUCKET:?}"
: "${S3_ACCESS_KEY_ID:?}" "${S3_SECRET_ACCESS_KEY:?}"

mc alias set store http://minio:9000 "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD"
mc mb --ignore-existing "store/$S3_BUCKET"
mc admin user add store "$S3_ACCESS_KEY_ID" "$S3_SECRET_ACCESS_KEY"
# Attaching a policy the user already has is an error: only attach when
# missing (matched in the shell, so the script needs nothing but sh and mc).
info=$(mc admin user info store "$S3_ACCESS_KEY_ID")
case "$info" in
  *readwrite*) ;;
  *) mc admin policy attach store readwrite --user "$S3_ACCESS_KEY_ID" ;;
esac
