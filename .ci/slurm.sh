#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, loopback only, for the launcher's tests.
#
#   bash .ci/slurm.sh up     install slurm-wlm + munge (apt) if missing, write slurm.conf,
#                            start munged, slurmctld, slurmd; wait until the node is idle
#   bash .ci/slurm.sh down   stop exactly the daemons `up` started (by their PIDs)
#
# The node advertises two stand-in GPUs (GRES on /dev/null-like device files), so a
# `--gpus-per-job 2` job is scheduled as on a GPU cluster: two tasks, DDP across them (gloo on
# this CPU-only machine).
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
GresTypes=gpu
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem Gres=gpu:2 State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
  # two stand-in GPUs: character devices like /dev/null (slurmd counts a GPU by its device
  # file; with task/none nothing is fenced, and nothing here runs on them)
  mkdir -p "$STATE/dev"
  for i in 0 1; do [ -e "$STATE/dev/gpu$i" ] || mknod "$STATE/dev/gpu$i" c 1 3; done
  echo "NodeName=$host Name=gpu File=$STATE/dev/gpu[0-1]" >"$STATE/gres.conf"
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
  # -c: no state from an earlier cluster (its jobs, a node drained by an older config)
  slurmctld -c -f "$CONF" 2>>"$STATE/log/slurmctld.err"
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
      local pid
      pid="$(cat "$pidfile")"
      kill "$pid" 2>/dev/null || true
      # gone before returning: an `up` right after must not find a munged still exiting
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
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
