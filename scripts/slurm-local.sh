#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, for Cairn's cluster tests (issue 17): Debian's
# slurm-wlm and munge, every file under DIR (config, munge key and socket, state, spool, logs),
# ports of its own, nothing in /etc or /run touched, so it never meets a real cluster.
#
# usage: scripts/slurm-local.sh start DIR   # installs what is missing, starts munged, slurmctld,
#                                           # slurmd; waits until the node is idle; prints the
#                                           # line to source: export SLURM_CONF=DIR/slurm.conf
#        scripts/slurm-local.sh stop DIR    # stops everything it started (by the pid files)
#        scripts/slurm-local.sh check DIR   # runs one job through sbatch and shows its output
#
# Job accounting (sacct) needs slurmdbd and a database; this cluster has none. Finished jobs
# stay visible to `scontrol show job` for MinJobAge seconds (set to 3600 here), and a job
# completion log (JobCompLoc=DIR/jobcomp.log) records each job's end, state and exit code.
set -euo pipefail
cmd=${1:-}; DIR=${2:-}
[ -n "$cmd" ] && [ -n "$DIR" ] || { sed -n '5,12p' "$0" >&2; exit 2; }
mkdir -p "$DIR"; DIR=$(cd "$DIR" && pwd)
export SLURM_CONF=$DIR/slurm.conf
PORT=${SLURM_LOCAL_PORT:-16817}

stop() {
    for p in slurmd slurmctld munged; do
        [ -f "$DIR/$p.pid" ] || continue
        pid=$(cat "$DIR/$p.pid")
        if kill "$pid" 2>/dev/null; then
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -9 "$pid" 2>/dev/null || true
        fi
        rm -f "$DIR/$p.pid"
    done
}

start() {
    missing=""; for p in slurm-wlm munge; do dpkg -s $p >/dev/null 2>&1 || missing="$missing $p"; done
    if [ -n "$missing" ]; then (apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null; fi
    stop
    mkdir -p "$DIR/state" "$DIR/spool" "$DIR/munge"
    chmod 700 "$DIR/munge"
    [ -f "$DIR/munge/munge.key" ] || { dd if=/dev/urandom of="$DIR/munge/munge.key" bs=1 count=1024 2>/dev/null; chmod 400 "$DIR/munge/munge.key"; }
    munged --force --key-file="$DIR/munge/munge.key" --socket="$DIR/munge/munge.socket" --pid-file="$DIR/munged.pid" \
        --log-file="$DIR/munged.log" --seed-file="$DIR/munge/munged.seed"
    host=$(hostname -s)
    # More job slots than cores (at least 8): the tests' jobs are small, and a sweep's concurrent
    # stages must not queue behind gate checks for want of a slot. config_overrides keeps slurmd
    # from draining a node whose configured CPUs exceed what it counts.
    cpus=$(( $(nproc) > 8 ? $(nproc) : 8 ))
    mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 512 ))
    cat >"$SLURM_CONF" <<EOF
ClusterName=cairn-local
SlurmctldHost=$host
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$DIR/munge/munge.socket
CredType=cred/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd.log
ProctrackType=proctrack/pgid
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
ReturnToService=2
MinJobAge=3600
DefMemPerCPU=2048
KillWait=10
JobCompType=jobcomp/filetxt
JobCompLoc=$DIR/jobcomp.log
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
SlurmdParameters=config_overrides
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=local Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
    slurmctld -f "$SLURM_CONF"
    slurmd -f "$SLURM_CONF"
    for _ in $(seq 100); do
        state=$(sinfo -h -o %t 2>/dev/null | head -1 || true)
        case "$state" in idle*|mix*|alloc*) echo "export SLURM_CONF=$SLURM_CONF"; return 0 ;; esac
        sleep 0.2
    done
    echo "slurm-local: the node did not come up (state '${state:-none}'); logs in $DIR" >&2
    tail -5 "$DIR/slurmctld.log" "$DIR/slurmd.log" >&2 || true
    stop
    exit 1
}

check() {
    out=$DIR/check.out
    rm -f "$out"
    job=$(sbatch --parsable -o "$out" --wrap 'echo "job $SLURM_JOB_ID on $(hostname) with $SLURM_CPUS_ON_NODE cpus"')
    for _ in $(seq 100); do [ -z "$(squeue -h -j "$job" 2>/dev/null)" ] && break; sleep 0.2; done
    scontrol show job "$job" | grep -E -o "JobState=[A-Z]+|ExitCode=[0-9:]+" | tr '\n' ' '; echo
    cat "$out"
}

case "$cmd" in
start) start ;;
stop) stop ;;
check) check ;;
*) echo "usage: $0 start|stop|check DIR" >&2; exit 2 ;;
esac
