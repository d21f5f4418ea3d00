#!/usr/bin/env bash
# Start a single-node Slurm cluster on localhost without systemd: munged, slurmctld, slurmd,
# partitions `cpu` (default) and `gpu`, one node with 8 fake GPUs (GRES). For tests only.
#   bash scripts/slurm_local/start.sh        # as root; `bash scripts/slurm_local/stop.sh` stops it
# Settings (environment): MORPHCPT_SLURM_DIR (default <repo>/.cache/slurm-local),
# MORPHCPT_SLURM_GPUS (8), MORPHCPT_SLURM_CPUS (nproc), MORPHCPT_SLURM_MEM_MB (90% of RAM),
# MORPHCPT_SLURM_CTLD_PORT (6817), MORPHCPT_SLURM_D_PORT (6818), MORPHCPT_SLURM_START_TIMEOUT (60 s).
# Exits 0 with the node idle, or non-zero with the failing daemon's log tail and nothing left
# running. Already running from the same folder: says so and exits 0.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
fail() { echo "slurm_local/start.sh: $*" >&2; bash "$here/stop.sh" >&2 || true; exit 1; }

[ "$(id -u)" = 0 ] || { echo "slurm_local/start.sh: must run as root (daemons run as root here)" >&2; exit 1; }
for cmd in slurmctld slurmd sinfo munged munge unmunge; do
  command -v "$cmd" >/dev/null || { echo "slurm_local/start.sh: $cmd not found; run scripts/slurm_local/setup.sh" >&2; exit 1; }
done

if alive "$D/run/slurmctld.pid" && alive "$D/run/slurmd.pid" && alive "$D/munge/run/munged.pid"; then
  echo "slurm_local/start.sh: already running from $D"
  SLURM_CONF=$SLURM_CONF_FILE sinfo
  exit 0
fi
# Leftovers of a half-started or crashed cluster from this folder: stop them first.
bash "$here/stop.sh" >/dev/null 2>&1 || true

NODE=$(hostname -s)
NCPU=${MORPHCPT_SLURM_CPUS:-$(nproc)}
# RealMemory above the machine's would drain the node ("Low RealMemory").
MEM=${MORPHCPT_SLURM_MEM_MB:-$(awk '/^MemTotal:/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)}
NGPU=${MORPHCPT_SLURM_GPUS:-8}
CTLD_PORT=${MORPHCPT_SLURM_CTLD_PORT:-6817}
D_PORT=${MORPHCPT_SLURM_D_PORT:-6818}

# Fresh state every start: job ids restart at 1, no jobs survive from an earlier run.
rm -rf "$D/state" "$D/log"
mkdir -p "$D"/{etc,state/ctld,state/d,log,run,fakedev,fakecg/systemd} "$D"/munge/{run,lib,log}
mkdir -p "$(dirname "$MUNGE_SOCK")"

# ---- munge: own key, socket and pidfile; as root it needs --force ----
if [ ! -s "$D/munge/munge.key" ]; then
  mungekey --create --keyfile="$D/munge/munge.key" --force
fi
chmod 0700 "$D/munge" "$D"/munge/{run,lib,log} "$(dirname "$MUNGE_SOCK")"
chmod 0400 "$D/munge/munge.key"
munged --force --key-file="$D/munge/munge.key" --socket="$MUNGE_SOCK" \
  --pid-file="$D/munge/run/munged.pid" --log-file="$D/munge/log/munged.log" \
  --seed-file="$D/munge/lib/munged.seed" || fail "munged failed to start: $(tail -n 5 "$D/munge/log/munged.log" 2>/dev/null)"
for _ in $(seq 50); do [ -S "$MUNGE_SOCK" ] && break; sleep 0.1; done
munge -S "$MUNGE_SOCK" -n | unmunge -S "$MUNGE_SOCK" >/dev/null || fail "munge round trip failed"

# ---- slurm.conf, gres.conf, cgroup.conf ----
cat > "$D/etc/slurm.conf" <<CONF
# Written by scripts/slurm_local/start.sh: a one-node test cluster, nothing is accounted.
ClusterName=morphcpt-local
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$MUNGE_SOCK
SlurmctldPort=$CTLD_PORT
SlurmdPort=$D_PORT
StateSaveLocation=$D/state/ctld
SlurmdSpoolDir=$D/state/d
SlurmctldPidFile=$D/run/slurmctld.pid
SlurmdPidFile=$D/run/slurmd.pid
SlurmctldLogFile=$D/log/slurmctld.log
SlurmdLogFile=$D/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# No cgroups, no systemd: track processes by parent pid, no task binding.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
# No slurmdbd: sacct/sacctmgr do not work, so Snakemake must poll with squeue (see MinJobAge).
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
GresTypes=gpu
MailProg=/bin/true
ReturnToService=2
# Finished jobs stay visible to squeue/scontrol for 10 min: the executor's squeue status
# check needs MinJobAge >= 3x its polling interval, and tests read finished jobs' requests.
MinJobAge=600
DefMemPerCPU=1000
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$NCPU RealMemory=$MEM Gres=gpu:$NGPU State=UNKNOWN
PartitionName=cpu Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=$NODE MaxTime=INFINITE State=UP
CONF
# Slurm 22.05 drops GPUs without File= ("Removing file-less GPU"), so each fake GPU gets a
# device file: a char device aliasing /dev/null where mknod is allowed, else a plain file.
for i in $(seq 0 $((NGPU - 1))); do
  f=$D/fakedev/nvidia$i
  [ -e "$f" ] || mknod "$f" c 1 3 2>/dev/null || touch "$f"
done
echo "NodeName=$NODE Name=gpu File=$D/fakedev/nvidia[0-$((NGPU - 1))]" > "$D/etc/gres.conf"
# slurmd 22.05 always loads a cgroup plugin and dies without a usable cgroup fs (containers);
# nothing here uses cgroups, so point the v1 plugin at an empty fake hierarchy.
cat > "$D/etc/cgroup.conf" <<CONF
CgroupPlugin=cgroup/v1
CgroupMountpoint=$D/fakecg
CgroupAutomount=no
CONF

# The slurm-jobstep executor removes every SLURM_* variable (SLURM_CONF too) before its nested
# `srun` inside a job, which then reads only the compiled-in /etc/slurm/slurm.conf: link ours
# there. Refuse to replace a real site config.
mkdir -p /etc/slurm
for f in "${ETC_LINKS[@]}"; do
  if [ -e "/etc/slurm/$f" ] || [ -L "/etc/slurm/$f" ]; then
    if ! [ -L "/etc/slurm/$f" ] || [ "$(readlink "/etc/slurm/$f")" != "$D/etc/$f" ]; then
      fail "/etc/slurm/$f exists and is not a link to $D/etc/$f; refusing to replace it (another Slurm config on this machine?)"
    fi
  fi
  ln -sfn "$D/etc/$f" "/etc/slurm/$f"
done

export SLURM_CONF=$SLURM_CONF_FILE
slurmctld -f "$SLURM_CONF" || fail "slurmctld failed to start; tail of $D/log/slurmctld.log:
$(tail -n 20 "$D/log/slurmctld.log" 2>/dev/null)"
slurmd -f "$SLURM_CONF" || fail "slurmd failed to start; tail of $D/log/slurmd.log:
$(tail -n 20 "$D/log/slurmd.log" 2>/dev/null)"

deadline=$((SECONDS + ${MORPHCPT_SLURM_START_TIMEOUT:-60}))
until timeout 5 sinfo -h -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated)$'; do
  for daemon in slurmctld slurmd; do
    if ! alive "$D/run/$daemon.pid"; then
      sleep 1 # the pidfile can lag daemonization a little
      alive "$D/run/$daemon.pid" || fail "$daemon is not running; tail of $D/log/$daemon.log:
$(tail -n 20 "$D/log/$daemon.log" 2>/dev/null)"
    fi
  done
  if [ $SECONDS -ge $deadline ]; then
    fail "node $NODE did not become idle in time: $(timeout 5 sinfo -h -N -o '%T %E' 2>&1); tail of $D/log/slurmctld.log:
$(tail -n 20 "$D/log/slurmctld.log" 2>/dev/null)"
  fi
  sleep 0.2
done
sinfo
echo "slurm_local/start.sh: up (config $SLURM_CONF; stop with: bash scripts/slurm_local/stop.sh)"
