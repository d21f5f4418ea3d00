#!/usr/bin/env bash
# Install the local test cluster's packages (Debian: slurmctld slurmd slurm-client munge) if
# any is missing. Idempotent; needs root and apt-get. Slurm 22.05 on Debian 12.
set -euo pipefail
missing=()
for cmd in slurmctld slurmd sbatch squeue scontrol munged munge; do
  command -v "$cmd" >/dev/null || missing+=("$cmd")
done
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || { echo "setup.sh: missing ${missing[*]}; installing needs root" >&2; exit 1; }
  command -v apt-get >/dev/null || { echo "setup.sh: missing ${missing[*]} and no apt-get" >&2; exit 1; }
  echo "setup.sh: installing slurmctld slurmd slurm-client munge (missing: ${missing[*]})"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # --no-install-recommends: this set (+ libmunge2, slurm-wlm-basic-plugins) is all it needs.
  apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null
fi
echo "setup.sh: $(slurmctld -V), $(munged -V 2>&1 | head -1)"
