#!/usr/bin/env bash
# Stop the local test cluster started by start.sh: cancel leftover jobs, then end slurmd,
# slurmctld and munged by their pidfiles (never by process name) and remove our /etc/slurm
# links. Safe to run when nothing is running. State and logs stay in $MORPHCPT_SLURM_DIR.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
export SLURM_CONF=$SLURM_CONF_FILE

# Cancel jobs first so no slurmstepd outlives slurmd.
if alive "$D/run/slurmctld.pid"; then
  timeout 5 scancel --user=root >/dev/null 2>&1 || true
  for _ in $(seq 50); do
    [ -z "$(timeout 5 squeue -h -t PENDING,RUNNING,COMPLETING 2>/dev/null)" ] && break
    sleep 0.1
  done
fi
pids=()
for pidfile in "${PIDFILES[@]}"; do
  if alive "$pidfile"; then
    pid=$(cat "$pidfile")
    kill -TERM "$pid" && pids+=("$pid")
  fi
  rm -f "$pidfile"
done
deadline=$((SECONDS + ${MORPHCPT_SLURM_STOP_TIMEOUT:-15}))
for pid in "${pids[@]}"; do
  while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    echo "slurm_local/stop.sh: pid $pid ignored TERM; killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
done
for f in "${ETC_LINKS[@]}"; do
  if [ -L "/etc/slurm/$f" ] && [ "$(readlink "/etc/slurm/$f")" = "$D/etc/$f" ]; then
    rm -f "/etc/slurm/$f"
  fi
done
[ ${#pids[@]} -gt 0 ] && echo "slurm_local/stop.sh: stopped ${#pids[@]} daemon(s) of $D"
exit 0
