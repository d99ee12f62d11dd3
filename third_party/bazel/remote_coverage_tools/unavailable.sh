#!/bin/sh
echo "fcvm: 'bazel coverage' is not supported: Bazel's coverage tools are not available offline." >&2
exit 1
