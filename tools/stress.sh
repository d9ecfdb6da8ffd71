#!/usr/bin/env bash
# Run a command while CPU-bound processes compete for the cores (default 2, STRESS_HOGS=N):
# `make test-stress` runs the test suite this way to prove it does not depend on a quiet machine.
# The hogs are stopped however the command ends: success, failure, Ctrl-C or SIGTERM.
set -uo pipefail

hogs=()
stop_hogs() {
  if ((${#hogs[@]})); then
    kill "${hogs[@]}" 2>/dev/null
    wait "${hogs[@]}" 2>/dev/null
  fi
  return 0
}
trap stop_hogs EXIT
# the EXIT trap runs after these, so an interrupted run still stops its hogs
trap 'exit 130' INT
trap 'exit 143' TERM

if (($# == 0)); then
  echo "usage: tools/stress.sh COMMAND [ARGS...]" >&2
  exit 2
fi
for _ in $(seq "${STRESS_HOGS:-2}"); do
  (while :; do :; done) &  # a pure busy loop: one core's worth of competition
  hogs+=($!)
done
echo "stress: ${#hogs[@]} CPU-bound processes (pids ${hogs[*]}) compete with: $*"
start=$SECONDS
"$@"
status=$?
echo "stress: exit status $status after $((SECONDS - start)) s"
exit "$status"
