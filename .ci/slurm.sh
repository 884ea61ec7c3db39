#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, loopback only, for the launcher's tests.
#
#   bash .ci/slurm.sh up     install slurm-wlm + munge (apt) if missing, write slurm.conf,
#                            start munged, slurmctld, slurmd; wait until the node is idle
#   bash .ci/slurm.sh down   stop exactly the daemons `up` started (by their PIDs)
#
# State lives in $ROBENCH_SLURM_DIR (default /tmp/robench-slurm): the config, spool folders,
# logs and the PID files `down` reads. Needs root (the daemons run as root here, as in CI).
set -euo pipefail

STATE="${ROBENCH_SLURM_DIR:-/tmp/robench-slurm}"
CONF="$STATE/slurm.conf"

up() {
  if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
  fi
  mkdir -p "$STATE"/{spool/ctld,spool/d,log,munge}
  local cpus mem host
  cpus="$(nproc)"
  mem="$(awk '/MemTotal/ {print int($2 / 1024 * 0.8)}' /proc/meminfo)"
  host="$(hostname -s)"
  cat >"$CONF" <<EOF
ClusterName=robench-ci
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=6817
SlurmdPort=6818
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
ReturnToService=2
JobRequeue=1
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
StateSaveLocation=$STATE/spool/ctld
SlurmdSpoolDir=$STATE/spool/d
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MinJobAge=600
KillWait=10
InactiveLimit=0
DefMemPerCPU=$((mem / cpus))
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
  # munge: a key, and a daemon whose socket the SLURM tools find at the default place
  if [ ! -s /etc/munge/munge.key ]; then
    mkdir -p /etc/munge
    dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
    chmod 400 /etc/munge/munge.key
  fi
  mkdir -p /run/munge /var/lib/munge /var/log/munge
  if ! pgrep -x munged >/dev/null; then
    munged --force --pid-file="$STATE/munged.pid" 2>>"$STATE/log/munged.log"
  fi
  export SLURM_CONF="$CONF"
  slurmctld -f "$CONF" 2>>"$STATE/log/slurmctld.err"
  slurmd -f "$CONF" 2>>"$STATE/log/slurmd.err"
  for _ in $(seq 1 60); do
    if sinfo -h -o "%T" 2>/dev/null | grep -qx "idle"; then
      echo "slurm up: $(sinfo -h -o '%P %D %c %T') (SLURM_CONF=$CONF)"
      return 0
    fi
    sleep 1
  done
  echo "slurm did not come up; logs in $STATE/log" >&2
  tail -n 20 "$STATE"/log/*.log >&2 || true
  return 1
}

down() {
  for daemon in slurmd slurmctld munged; do
    local pidfile="$STATE/$daemon.pid"
    if [ -s "$pidfile" ]; then
      kill "$(cat "$pidfile")" 2>/dev/null || true
      rm -f "$pidfile"
    fi
  done
  echo "slurm down"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  *) echo "usage: bash .ci/slurm.sh up|down" >&2; exit 2 ;;
esac
