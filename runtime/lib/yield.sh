# shellcheck shell=bash
# Background work that must not slow the database load beside it.

# yield_cpu COMMAND...: replaces this (background) shell with COMMAND, run on the CPU the
# database server leaves idle. Nice alone does not do that: Linux shares the CPU between
# sessions (autogroups) first. In a session of its own whose autogroup has the lowest
# weight, COMMAND waits for an idle core (docs/performance.md, "Restore: yielding the
# CPU"); where there are no autogroups (a container's cgroup) the nice value still puts
# COMMAND behind this restore's own pg_restore.
yield_cpu() {
  # --wait: should setsid have to fork (this shell leading a process group), it still ends
  # only when COMMAND does, so that waiting for it waits for COMMAND.
  if command -v setsid >/dev/null 2>&1; then
    exec setsid --wait sh -c 'echo 19 >/proc/self/autogroup 2>/dev/null; exec nice -n 19 "$@"' yield_cpu "$@"
  fi
  exec nice -n 19 "$@"
}
