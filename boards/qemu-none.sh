#!/usr/bin/env bash
# Cargo runner for aarch64-unknown-none (root .cargo/config.toml): boots the
# ELF cargo passes on the QEMU machine of its board, chosen by the binary's
# name (test binaries carry a -hash suffix). The firmware's semihosting exit
# code becomes QEMU's; `timeout` turns a hang into exit 124.
#   raspi3b*   -M raspi3b (4x Cortex-A53, 1 GiB; fixed by QEMU)
#   otherwise  -M virt -cpu cortex-a72
set -euo pipefail
elf=$1
shift
case "$(basename "$elf")" in
  raspi3b*) machine=(-M raspi3b) ;;
  *) machine=(-M virt -cpu cortex-a72 -nic none) ;;
esac
exec timeout 120 qemu-system-aarch64 "${machine[@]}" -nographic \
  -semihosting-config enable=on,target=native -kernel "$elf" "$@"
