# Shared settings of the local test cluster (sourced by setup.sh, start.sh, stop.sh).
# Everything the cluster writes (config, state, logs, pidfiles, munge key) lives under
# $MORPHCPT_SLURM_DIR, except the /etc/slurm/ symlinks start.sh makes (see there why).
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
D=${MORPHCPT_SLURM_DIR:-$REPO_ROOT/.cache/slurm-local}
mkdir -p "$D"
D=$(cd "$D" && pwd)                 # absolute: it is written into slurm.conf
SLURM_CONF_FILE=$D/etc/slurm.conf
ETC_LINKS=(slurm.conf gres.conf cgroup.conf)
# A unix socket path must fit in 108 bytes; a deep checkout would overflow it, so the munge
# socket falls back to a short per-folder path under /run.
MUNGE_SOCK=$D/munge/run/munge.socket.2
if [ ${#MUNGE_SOCK} -gt 100 ]; then
  MUNGE_SOCK=/run/morphcpt-munge-$(printf '%s' "$D" | cksum | cut -d' ' -f1)/munge.socket.2
fi
PIDFILES=("$D/run/slurmd.pid" "$D/run/slurmctld.pid" "$D/munge/run/munged.pid")

# alive PIDFILE: true when the pidfile names a running process.
alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
