#!/usr/bin/env bash
# Builds the insn_count QEMU plugin (insn_count.c) into $1 (default
# target/insn-count/libinsn_count.so) with the system C compiler; prints the
# path. Needs only cc: the plugin declares the QEMU API it calls itself.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$(dirname "$(dirname "$here")")/target/insn-count/libinsn_count.so}
mkdir -p "$(dirname "$out")"
cc -O2 -Wall -Wextra -Werror -shared -fPIC -o "$out" "$here/insn_count.c"
echo "$out"
