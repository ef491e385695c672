#!/usr/bin/env bash
# A local Slurm cluster on this machine, for Cairn's cluster tests (issue 17): Debian's slurm-wlm
# and munge, every file under DIR (config, munge key and socket, state, spool, logs), ports of its
# own, nothing in /etc or /run touched, so it never meets a real cluster.
#
# usage: scripts/slurm-local.sh start DIR   # installs what is missing, starts munged, slurmctld,
#                                           # slurmd; waits until the nodes are idle; prints the
#                                           # line to source: export SLURM_CONF=DIR/slurm.conf
#        scripts/slurm-local.sh stop DIR    # stops everything it started (by the pid files)
#        scripts/slurm-local.sh check DIR   # runs one job on each node and shows where it ran
#
# SLURM_LOCAL_NODES=N (default 1) starts N nodes, each slurmd in network and hostname namespaces
# of its own (cairn-n1, cairn-n2, ...; needs root), joined to this host by a veth pair with
# addresses from 198.18.0.0/15 (RFC 2544, kept for tests); jobs then run on N hosts that share
# this one's filesystem, as a cluster's nodes share the store. One node runs in this host's
# namespaces, named after it. Either way the cluster has at least 8 job slots however few cores
# the machine has, so that a sweep's stages and gate checks do not queue behind each other.
#
# Job accounting (sacct) needs slurmdbd and a database; this cluster has none. Finished jobs
# stay visible to `scontrol show job` for MinJobAge seconds (set to 3600 here), and a job
# completion log (JobCompLoc=DIR/jobcomp.log) records each job's end, state and exit code.
set -euo pipefail
cmd=${1:-}; DIR=${2:-}
[ -n "$cmd" ] && [ -n "$DIR" ] || { sed -n '6,10p' "$0" >&2; exit 2; }
mkdir -p "$DIR"; DIR=$(cd "$DIR" && pwd)
export SLURM_CONF=$DIR/slurm.conf
PORT=${SLURM_LOCAL_PORT:-16817}
NODES=${SLURM_LOCAL_NODES:-1}
case "$NODES" in [1-9]) ;; *) echo "slurm-local: SLURM_LOCAL_NODES is 1 to 9, not '$NODES'" >&2; exit 2 ;; esac

# Node K's addresses (K from 1): a /30 of its own in 198.18.0.0/15, picked by the port so that
# clusters on other ports do not meet; this host is .1 of it, the node .2.
addr() {  # addr K HOST_OR_NODE(1|2)
    local off=$(( (PORT % 8192) * 16 + ($1 - 1) * 4 + $2 ))
    echo "198.$(( 18 + off / 65536 )).$(( off / 256 % 256 )).$(( off % 256 ))"
}

stop() {
    for f in "$DIR"/slurmd*.pid "$DIR/slurmctld.pid" "$DIR/munged.pid"; do
        [ -f "$f" ] || continue
        pid=$(cat "$f")
        if kill "$pid" 2>/dev/null; then
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -9 "$pid" 2>/dev/null || true
        fi
        rm -f "$f"
    done
    # The nodes' namespaces (deleting one removes its end of the veth pair, and so the pair).
    if [ -f "$DIR/netns" ]; then
        while read -r ns; do ip netns del "$ns" 2>/dev/null || true; done <"$DIR/netns"
        rm -f "$DIR/netns"
    fi
}

# Node K in namespaces of its own: network (a veth pair to this host, a default route through
# it) and hostname; slurmd starts there and daemonizes, staying in them.
start_node() {  # start_node K NAME
    local ns="cairn-$PORT-n$1" outer="cs$PORT-$1" inner="cn$PORT-$1" host node
    host=$(addr "$1" 1); node=$(addr "$1" 2)
    ip netns del "$ns" 2>/dev/null || true
    ip link del "$outer" 2>/dev/null || true
    ip netns add "$ns"
    echo "$ns" >>"$DIR/netns"
    ip link add "$outer" type veth peer name "$inner"
    ip link set "$inner" netns "$ns"
    ip addr add "$host/30" dev "$outer"
    ip link set "$outer" up
    ip netns exec "$ns" sh -c "ip link set lo up && ip addr add $node/30 dev $inner && ip link set $inner up && ip route add default via $host"
    # nsenter, not `ip netns exec`: that remounts /sys, hiding the cgroup filesystem slurmd reads.
    nsenter --net="/run/netns/$ns" unshare --uts sh -c "echo $2 >/proc/sys/kernel/hostname && exec slurmd -f '$SLURM_CONF' -N $2"
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
    # More job slots than cores (at least 8 in all): the tests' jobs are small. config_overrides
    # keeps slurmd from draining a node whose configured CPUs exceed what it counts.
    slots=$(( $(nproc) > 8 ? $(nproc) : 8 ))
    cpus=$(( (slots + NODES - 1) / NODES ))
    mem=$(( ($(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 512) / NODES ))
    if [ "$NODES" = 1 ]; then
        ctld=$host
        nodes="NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN"
        names=$host
    else
        command -v ip >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iproute2 >/dev/null
        ctld="$host($(addr 1 1))"
        nodes=""; names=""
        for k in $(seq "$NODES"); do
            nodes="$nodes${nodes:+
}NodeName=cairn-n$k NodeAddr=$(addr "$k" 2) CPUs=$cpus RealMemory=$mem State=UNKNOWN"
            names="$names${names:+,}cairn-n$k"
        done
    fi
    cat >"$SLURM_CONF" <<EOF
ClusterName=cairn-local
SlurmctldHost=$ctld
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$DIR/munge/munge.socket
CredType=cred/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool/%n
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd-%n.pid
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd-%n.log
ProctrackType=proctrack/pgid
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory,CR_LLN
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
$nodes
PartitionName=local Nodes=$names Default=YES MaxTime=INFINITE State=UP
EOF
    slurmctld -f "$SLURM_CONF"
    if [ "$NODES" = 1 ]; then
        slurmd -f "$SLURM_CONF"
    else
        for k in $(seq "$NODES"); do start_node "$k" "cairn-n$k"; done
    fi
    for _ in $(seq 150); do
        # Every node idle (or already running jobs), none down or still coming up.
        states=$(sinfo -h -N -o %t 2>/dev/null || true)
        if [ "$(echo "$states" | grep -c -E '^(idle|mix|alloc)')" = "$NODES" ]; then echo "export SLURM_CONF=$SLURM_CONF"; return 0; fi
        sleep 0.2
    done
    echo "slurm-local: the nodes did not come up (states '$(echo ${states:-none})'); logs in $DIR" >&2
    tail -5 "$DIR/slurmctld.log" "$DIR"/slurmd-*.log >&2 || true
    stop
    exit 1
}

check() {
    for node in $(sinfo -h -N -o %N | sort -u); do
        out=$DIR/check-$node.out
        rm -f "$out"
        job=$(sbatch --parsable -w "$node" -o "$out" --wrap 'echo "job $SLURM_JOB_ID on $(hostname) with $SLURM_CPUS_ON_NODE cpus"')
        for _ in $(seq 100); do [ -z "$(squeue -h -j "$job" 2>/dev/null)" ] && break; sleep 0.2; done
        scontrol show job "$job" | grep -E -o "JobState=[A-Z]+|ExitCode=[0-9:]+" | tr '\n' ' '; echo
        cat "$out"
    done
}

case "$cmd" in
start) start ;;
stop) stop ;;
check) check ;;
*) echo "usage: $0 start|stop|check DIR" >&2; exit 2 ;;
esac
