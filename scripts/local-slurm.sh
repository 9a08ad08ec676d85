#!/usr/bin/env bash
# local-slurm.sh — a real multi-node SLURM cluster on one Debian 12 machine, so that
# perfsanity's SLURM launcher can be tested end to end without a real cluster.
#
# Every fake compute node is a network namespace with its own UTS namespace (own hostname,
# own IP on a private bridge, own loopback), running its own stock slurmd. The filesystem is
# shared by all nodes. slurmctld, slurmdbd, MariaDB and munged run in the host namespace,
# which is also the login node (sbatch/squeue/sacct/scancel work there as on a real cluster).
# Design, status commands and measured timings: docs/LOCAL_SLURM.md.
#
# Usage (as root):
#   local-slurm.sh up [--nodes N] [--cpus N] [--gpus N] [--no-accounting] [--fresh]
#   local-slurm.sh down [--purge]
#   local-slurm.sh status
#   local-slurm.sh selftest [--quick]
#
# Environment overrides (read by every sub-command; keep them the same for up and down):
#   PS_SLURM_STATE        state directory              (default /var/lib/perfsanity-slurm)
#   PS_SLURM_SUBNET       first three octets of the node /24 network (default 10.251.77)
#   PS_SLURM_NODE_PREFIX  node name prefix             (default node → node1..nodeN)
set -Eeuo pipefail

readonly PROG=local-slurm
readonly STATE=${PS_SLURM_STATE:-/var/lib/perfsanity-slurm}
readonly SUBNET=${PS_SLURM_SUBNET:-10.251.77}
readonly NODE_PREFIX=${PS_SLURM_NODE_PREFIX:-node}
readonly CLUSTER=perfsanity
readonly PARTITION=batch
readonly ACCOUNT=perfsanity
readonly CTL_ADDR=$SUBNET.254
readonly CTL_PORT=6817 SLURMD_PORT=6818 DBD_PORT=6819 DB_PORT=16306
readonly BRIDGE=psslurm0
readonly NS_PREFIX=psslurm-
readonly VETH_PREFIX=psslurm-v
readonly CONF_DIR=/etc/slurm
readonly SLURM_CONF_FILE=$CONF_DIR/slurm.conf
readonly MARK="# managed-by: perfsanity scripts/local-slurm.sh"
readonly HOSTS_BEGIN="# BEGIN perfsanity local-slurm"
readonly HOSTS_END="# END perfsanity local-slurm"
readonly RUN=$STATE/run LOG=$STATE/log DB_DIR=$STATE/mysql
readonly SETTINGS=$STATE/cluster.env
readonly WAIT_SECS=${PS_SLURM_WAIT_SECS:-90}

trap 'printf "[local-slurm] ERROR: unexpected failure at line %s: %s\n" "$LINENO" "$BASH_COMMAND" >&2' ERR

log() { printf '[%s] %s\n' "$PROG" "$*" >&2; }
die() { printf '[%s] ERROR: %s\n' "$PROG" "$*" >&2; exit 1; }

usage() {
    sed -n '/^# Usage/,/^# Environment/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
    exit 2
}

need_root() { [[ $(id -u) -eq 0 ]] || die "must run as root (it installs packages and creates network namespaces)"; }

# wait_until DESCRIPTION SECONDS COMMAND... — poll COMMAND until it succeeds or time runs out.
wait_until() {
    local what=$1 secs=$2
    shift 2
    local deadline=$((SECONDS + secs))
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || return 1
        sleep 0.2
    done
    log "ready: $what"
}

is_int_in() { [[ $1 =~ ^[0-9]+$ ]] && (($1 >= $2 && $1 <= $3)); }

node_name() { printf '%s%d' "$NODE_PREFIX" "$1"; }
node_list() { # node_list N → "node[1-N]" (or "node1")
    if (($1 == 1)); then node_name 1; else printf '%s[1-%d]' "$NODE_PREFIX" "$1"; fi
}

# ---------------------------------------------------------------- packages

packages_for() { # packages_for ACCOUNTING
    # libpmix-dev ships the unversioned libpmix.so that Slurm's mpi/pmix plugin dlopen()s.
    local pkgs=(munge slurm-wlm slurm-client libpmix2 libpmix-dev)
    [[ $1 == yes ]] && pkgs+=(slurmdbd mariadb-server mariadb-client)
    printf '%s\n' "${pkgs[@]}"
}

install_packages() {
    local missing=() p
    while read -r p; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done < <(packages_for "$1")
    if ((${#missing[@]} == 0)); then
        log "packages already installed"
        return
    fi
    log "installing: ${missing[*]}"
    local t0=$SECONDS
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >"$LOG/apt.log" 2>&1 || { tail -20 "$LOG/apt.log" >&2; die "apt-get update failed (log: $LOG/apt.log)"; }
    apt-get install -y -q --no-install-recommends \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
        "${missing[@]}" >>"$LOG/apt.log" 2>&1 || { tail -20 "$LOG/apt.log" >&2; die "apt-get install failed (log: $LOG/apt.log)"; }
    log "packages installed in $((SECONDS - t0)) s"
}

# ---------------------------------------------------------------- processes

# pid_alive PIDFILE COMM — the pid in PIDFILE runs a program whose name starts with COMM.
pid_alive() {
    local pid
    [[ -s $1 ]] || return 1
    pid=$(<"$1")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$2"* ]] || return 1
    [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) != Z ]] # a zombie is not running
}

# stop_pidfile PIDFILE COMM — SIGTERM, wait up to 15 s, then SIGKILL.
stop_pidfile() {
    local pid
    pid_alive "$1" "$2" || { rm -f "$1"; return 0; }
    pid=$(<"$1")
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + 15))
    while [[ -d /proc/$pid ]] && [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) != Z ]]; do
        if ((SECONDS >= deadline)); then
            log "$2 ($pid) ignored SIGTERM; killing"
            kill -KILL "$pid" 2>/dev/null || true
            break
        fi
        sleep 0.1
    done
    rm -f "$1"
}

# ---------------------------------------------------------------- munge

munge_works() { munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; }

start_munge() {
    if munge_works; then
        log "munged already running"
        return
    fi
    if [[ ! -s /etc/munge/munge.key ]]; then
        log "creating /etc/munge/munge.key"
        mungekey --create --keyfile=/etc/munge/munge.key
    fi
    chown munge:munge /etc/munge /etc/munge/munge.key
    chmod 0700 /etc/munge
    chmod 0400 /etc/munge/munge.key
    install -d -o munge -g munge -m 0755 /run/munge
    install -d -o munge -g munge -m 0700 /var/log/munge
    install -d -o munge -g munge -m 0711 /var/lib/munge
    runuser -u munge -- /usr/sbin/munged --force </dev/null >>"$LOG/munged.out" 2>&1 \
        || die "munged failed to start (see /var/log/munge/munged.log)"
    touch "$RUN/munged.ours"
    wait_until munged 20 munge_works || die "munged does not answer (see /var/log/munge/munged.log)"
}

stop_munge() {
    # Only stop a munged this script started; one started by the distribution is left alone.
    [[ -e $RUN/munged.ours ]] || return 0
    stop_pidfile /run/munge/munged.pid munged
    rm -f "$RUN/munged.ours"
}

# ---------------------------------------------------------------- network

net_up() {
    local n=$1 i ns veth
    ip link add "$BRIDGE" type bridge
    ip addr add "$CTL_ADDR/24" dev "$BRIDGE"
    ip link set "$BRIDGE" up
    for ((i = 1; i <= n; i++)); do
        ns=$NS_PREFIX$(node_name "$i")
        veth=$VETH_PREFIX$i
        ip netns add "$ns"
        ip link add "$veth" type veth peer name "${veth}p"
        ip link set "${veth}p" netns "$ns"
        ip -n "$ns" link set "${veth}p" name eth0
        ip -n "$ns" addr add "$SUBNET.$i/24" dev eth0
        ip -n "$ns" link set lo up
        ip -n "$ns" link set eth0 up
        ip link set "$veth" master "$BRIDGE"
        ip link set "$veth" up
    done
}

net_down() {
    local ns
    for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$NS_PREFIX" || true); do
        ip netns delete "$ns" 2>/dev/null || true
    done
    ip link show "$BRIDGE" >/dev/null 2>&1 && ip link delete "$BRIDGE"
    local veth
    for veth in $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | sed 's/@.*//' | grep "^$VETH_PREFIX" || true); do
        ip link delete "$veth" 2>/dev/null || true
    done
    return 0
}

hosts_down() {
    grep -qF "$HOSTS_BEGIN" /etc/hosts || return 0
    local tmp
    tmp=$(mktemp)
    sed "/^$HOSTS_BEGIN\$/,/^$HOSTS_END\$/d" /etc/hosts >"$tmp"
    cat "$tmp" >/etc/hosts # keep the inode: /etc/hosts may be a bind mount
    rm -f "$tmp"
}

hosts_up() {
    local n=$1 i
    hosts_down
    {
        echo "$HOSTS_BEGIN"
        for ((i = 1; i <= n; i++)); do echo "$SUBNET.$i $(node_name "$i")"; done
        echo "$HOSTS_END"
    } >>/etc/hosts
}

# ---------------------------------------------------------------- configuration

check_conf_ours() {
    [[ ! -e $1 ]] || grep -qF "$MARK" "$1" ||
        die "$1 exists and was not written by this script; move it away first (this script owns the local cluster's config)"
}

write_configs() {
    local n=$1 cpus=$2 gpus=$3 accounting=$4 host=$5
    install -d -m 0755 "$CONF_DIR"
    check_conf_ours "$SLURM_CONF_FILE"
    check_conf_ours "$CONF_DIR/gres.conf"
    check_conf_ours "$CONF_DIR/slurmdbd.conf"
    local i nodes
    nodes=$(node_list "$n")
    {
        echo "$MARK — regenerated by 'up'; edit the script, not this file."
        echo "ClusterName=$CLUSTER"
        echo "SlurmctldHost=$host($CTL_ADDR)"
        echo "SlurmctldPort=$CTL_PORT"
        echo "SlurmdPort=$SLURMD_PORT"
        echo "SlurmUser=root"
        echo "SlurmdUser=root"
        echo "AuthType=auth/munge"
        echo "CredType=cred/munge"
        echo "StateSaveLocation=$STATE/slurmctld"
        echo "SlurmdSpoolDir=$STATE/slurmd/%n"
        # Node-local scratch: PMIx puts per-step directories there, which collide on a shared /tmp.
        echo "TmpFS=$STATE/nodetmp/%n"
        echo "SlurmctldPidFile=$RUN/slurmctld.pid"
        echo "SlurmdPidFile=$RUN/slurmd-%n.pid"
        echo "SlurmctldLogFile=$LOG/slurmctld.log"
        echo "SlurmdLogFile=$LOG/slurmd-%n.log"
        echo "SlurmctldDebug=info"
        echo "SlurmdDebug=info"
        echo "MailProg=/bin/true"
        # No cgroups: several slurmd share one kernel and there is no systemd to delegate to.
        echo "ProctrackType=proctrack/linuxproc"
        echo "TaskPlugin=task/none"
        echo "MpiDefault=none"
        echo "SchedulerType=sched/backfill"
        echo "SelectType=select/cons_tres"
        echo "SelectTypeParameters=CR_Core"
        # Nodes advertise what this file says, not what the 2-core VM has.
        echo "SlurmdParameters=config_overrides"
        echo "ReturnToService=2"
        echo "MinJobAge=3600"
        echo "KillWait=10"
        echo "InactiveLimit=0"
        echo "JobAcctGatherType=jobacct_gather/linux"
        echo "JobAcctGatherFrequency=30"
        if [[ $accounting == yes ]]; then
            echo "AccountingStorageType=accounting_storage/slurmdbd"
            echo "AccountingStorageHost=$CTL_ADDR"
            echo "AccountingStoragePort=$DBD_PORT"
        else
            echo "AccountingStorageType=accounting_storage/none"
        fi
        echo "JobCompType=jobcomp/filetxt"
        echo "JobCompLoc=$LOG/jobcomp.txt"
        local gres=""
        if ((gpus > 0)); then
            echo "GresTypes=gpu"
            gres=" Gres=gpu:$gpus"
        fi
        echo "NodeName=DEFAULT CPUs=$cpus Boards=1 SocketsPerBoard=1 CoresPerSocket=$cpus ThreadsPerCore=1 RealMemory=4096$gres State=UNKNOWN"
        for ((i = 1; i <= n; i++)); do
            echo "NodeName=$(node_name "$i") NodeAddr=$SUBNET.$i"
        done
        # Whole nodes per job, as on GPU clusters; steps inside a job share them.
        echo "PartitionName=$PARTITION Nodes=$nodes Default=YES MaxTime=INFINITE State=UP OverSubscribe=EXCLUSIVE"
    } >"$SLURM_CONF_FILE.tmp"
    mv "$SLURM_CONF_FILE.tmp" "$SLURM_CONF_FILE"
    chmod 0644 "$SLURM_CONF_FILE"
    {
        echo "$MARK"
        # Slurm drops GPUs without device files, so each node gets the same fake ones (see fake_gpus).
        ((gpus > 0)) && echo "NodeName=$nodes Name=gpu File=$STATE/fakegpu/nvidia$( ((gpus == 1)) && echo 0 || echo "[0-$((gpus - 1))]")"
    } >"$CONF_DIR/gres.conf"
    if [[ $accounting == yes ]]; then
        (
            umask 077
            {
                echo "$MARK"
                echo "AuthType=auth/munge"
                echo "DbdHost=$host"
                echo "DbdAddr=$CTL_ADDR"
                echo "DbdPort=$DBD_PORT"
                echo "SlurmUser=root"
                echo "DebugLevel=info"
                echo "LogFile=$LOG/slurmdbd.log"
                echo "PidFile=$RUN/slurmdbd.pid"
                echo "StorageType=accounting_storage/mysql"
                echo "StorageHost=127.0.0.1"
                echo "StoragePort=$DB_PORT"
                echo "StorageUser=slurm"
                echo "StoragePass=$(<"$STATE/db.pass")"
                echo "StorageLoc=slurm_acct_db"
            } >"$CONF_DIR/slurmdbd.conf"
        )
    fi
}

# fake_gpus N — N character devices standing in for /dev/nvidia0..N-1. They are copies of
# /dev/null's device number (1,3): Slurm only needs a device file to count and number a GPU
# (CUDA_VISIBLE_DEVICES), and with task/none it never restricts access to it.
fake_gpus() {
    local i dir=$STATE/fakegpu
    rm -rf "$dir"
    install -d -m 0755 "$dir"
    for ((i = 0; i < $1; i++)); do
        mknod -m 0666 "$dir/nvidia$i" c 1 3 || die "cannot create fake GPU device $dir/nvidia$i (mknod refused?); use --gpus 0 to run without GPUs"
    done
}

# ---------------------------------------------------------------- accounting database

db_sock() { echo "$RUN/mysqld.sock"; }
db_ping() { mariadb-admin --no-defaults -S "$(db_sock)" -u root ping; }
db() { mariadb --no-defaults -S "$(db_sock)" -u root; } # SQL on stdin

start_db() {
    if pid_alive "$RUN/mysqld.pid" mariadbd; then
        log "mariadbd already running"
        return
    fi
    [[ -s $STATE/db.pass ]] || (umask 077 && head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$STATE/db.pass")
    if [[ ! -d $DB_DIR/mysql ]]; then
        log "initialising MariaDB data directory $DB_DIR"
        install -d -o mysql -g mysql -m 0750 "$DB_DIR"
        mariadb-install-db --no-defaults --user=mysql --datadir="$DB_DIR" \
            --auth-root-authentication-method=socket --skip-test-db >"$LOG/mariadb-install.log" 2>&1 ||
            { tail -20 "$LOG/mariadb-install.log" >&2; die "mariadb-install-db failed"; }
    fi
    chown mysql:mysql "$RUN"
    setsid mariadbd --no-defaults --user=mysql --datadir="$DB_DIR" \
        --socket="$(db_sock)" --pid-file="$RUN/mysqld.pid" --port="$DB_PORT" --bind-address=127.0.0.1 \
        --log-error="$LOG/mariadb.err" --innodb-buffer-pool-size=64M --innodb-log-file-size=16M \
        --skip-name-resolve </dev/null >/dev/null 2>&1 &
    disown
    wait_until mariadbd 60 db_ping || { tail -20 "$LOG/mariadb.err" >&2; die "MariaDB did not start (log: $LOG/mariadb.err)"; }
    local pass
    pass=$(<"$STATE/db.pass")
    db <<SQL
CREATE DATABASE IF NOT EXISTS slurm_acct_db;
CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY '$pass';
ALTER USER 'slurm'@'127.0.0.1' IDENTIFIED BY '$pass';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
SQL
}

start_slurmdbd() {
    if ! pid_alive "$RUN/slurmdbd.pid" slurmdbd; then
        slurmdbd </dev/null >>"$LOG/slurmdbd.out" 2>&1 || die "slurmdbd failed to start (log: $LOG/slurmdbd.log)"
    fi
    wait_until slurmdbd 60 sacctmgr -n show cluster ||
        { tail -20 "$LOG/slurmdbd.log" >&2; die "slurmdbd does not answer (log: $LOG/slurmdbd.log)"; }
    # Cluster, account and root's association, so sacct shows jobs with an account like a real site.
    sacctmgr -n -P show cluster format=cluster | grep -qx "$CLUSTER" ||
        sacctmgr -i add cluster "$CLUSTER" >/dev/null
    sacctmgr -n -P show account format=account | grep -qx "$ACCOUNT" ||
        sacctmgr -i add account "$ACCOUNT" cluster="$CLUSTER" description=local-slurm organization=perfsanity >/dev/null
    sacctmgr -n -P show assoc where cluster="$CLUSTER" account="$ACCOUNT" user=root format=user | grep -qx root ||
        sacctmgr -i add user root account="$ACCOUNT" cluster="$CLUSTER" >/dev/null
}

# ---------------------------------------------------------------- slurm daemons

ctld_up() { scontrol ping 2>/dev/null | grep -q 'is UP'; }

start_slurmctld() {
    if ! pid_alive "$RUN/slurmctld.pid" slurmctld; then
        slurmctld </dev/null >>"$LOG/slurmctld.out" 2>&1 || die "slurmctld failed to start (log: $LOG/slurmctld.log)"
    fi
    wait_until slurmctld 60 ctld_up || { tail -20 "$LOG/slurmctld.log" >&2; die "slurmctld does not answer (log: $LOG/slurmctld.log)"; }
}

start_slurmd() { # start_slurmd INDEX
    local name ns
    name=$(node_name "$1")
    ns=$NS_PREFIX$name
    pid_alive "$RUN/slurmd-$name.pid" slurmd && return 0
    install -d -m 0755 "$STATE/slurmd/$name"
    install -d -m 1777 "$STATE/nodetmp/$name"
    # Own network namespace (created by net_up) + own UTS namespace whose hostname is the node name;
    # slurmd daemonises inside them, so every step and task it starts sees that node's identity.
    # shellcheck disable=SC2016 # $1 is expanded by the inner sh
    nsenter --net="/run/netns/$ns" -- unshare --uts -- \
        sh -c 'hostname "$1" && exec slurmd -N "$1"' slurmd-launch "$name" \
        </dev/null >>"$LOG/slurmd-$name.out" 2>&1 || die "slurmd for $name failed to start (log: $LOG/slurmd-$name.log)"
}

all_nodes_responding() { # all_nodes_responding N — every node registered (not *, not unknown/down)
    local ok
    ok=$(sinfo -h -N -p "$PARTITION" -o '%N %T' 2>/dev/null | awk '$2 !~ /[*~#%]$|^(unknown|down|not_responding)/' | sort -u | wc -l)
    ((ok == $1))
}

all_nodes_idle() { # all_nodes_idle N
    local idle
    idle=$(sinfo -h -N -p "$PARTITION" -o '%N %T' 2>/dev/null | awk '$2 == "idle"' | sort -u | wc -l)
    ((idle == $1))
}

# ---------------------------------------------------------------- settings

settings_text() { # settings_text NODES CPUS GPUS ACCOUNTING
    printf 'NODES=%s\nCPUS=%s\nGPUS=%s\nACCOUNTING=%s\nSUBNET=%s\nNODE_PREFIX=%s\n' \
        "$1" "$2" "$3" "$4" "$SUBNET" "$NODE_PREFIX"
}

save_settings() { settings_text "$@" >"$SETTINGS"; }

load_settings() { # sets NODES CPUS GPUS ACCOUNTING from the last 'up', or returns 1
    [[ -s $SETTINGS ]] || return 1
    NODES=$(sed -n 's/^NODES=//p' "$SETTINGS")
    CPUS=$(sed -n 's/^CPUS=//p' "$SETTINGS")
    GPUS=$(sed -n 's/^GPUS=//p' "$SETTINGS")
    ACCOUNTING=$(sed -n 's/^ACCOUNTING=//p' "$SETTINGS")
}

# cluster_healthy — every daemon of the recorded settings runs and every node is idle/allocated.
cluster_healthy() {
    local NODES CPUS GPUS ACCOUNTING i
    load_settings || return 1
    munge_works || return 1
    if [[ $ACCOUNTING == yes ]]; then
        pid_alive "$RUN/mysqld.pid" mariadbd || return 1
        pid_alive "$RUN/slurmdbd.pid" slurmdbd || return 1
    fi
    pid_alive "$RUN/slurmctld.pid" slurmctld || return 1
    for ((i = 1; i <= NODES; i++)); do
        pid_alive "$RUN/slurmd-$(node_name "$i").pid" slurmd || return 1
    done
    ctld_up || return 1
    local bad
    bad=$(sinfo -h -N -p "$PARTITION" -o '%T' 2>/dev/null | grep -cvE '^(idle|mixed|allocated|completing)$' || true)
    [[ $bad == 0 ]]
}

# ---------------------------------------------------------------- sub-commands

cmd_up() {
    local nodes=4 cpus=16 gpus=8 accounting=yes fresh=no
    while (($#)); do
        case $1 in
            --nodes) nodes=${2:?--nodes needs a value}; shift 2 ;;
            --cpus) cpus=${2:?--cpus needs a value}; shift 2 ;;
            --gpus) gpus=${2:?--gpus needs a value}; shift 2 ;;
            --no-accounting) accounting=no; shift ;;
            --fresh) fresh=yes; shift ;;
            *) die "up: unknown argument '$1' (expected --nodes N, --cpus N, --gpus N, --no-accounting, --fresh)" ;;
        esac
    done
    is_int_in "$nodes" 1 64 || die "up: --nodes must be an integer in 1..64, got '$nodes'"
    is_int_in "$cpus" 1 256 || die "up: --cpus must be an integer in 1..256, got '$cpus'"
    is_int_in "$gpus" 0 64 || die "up: --gpus must be an integer in 0..64, got '$gpus'"
    [[ $SUBNET =~ ^[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}$ ]] || die "PS_SLURM_SUBNET must look like 10.251.77, got '$SUBNET'"
    [[ $NODE_PREFIX =~ ^[a-z][a-z0-9-]*[a-z-]$|^[a-z]$ ]] || die "PS_SLURM_NODE_PREFIX must be lower-case letters/digits/'-' not ending in a digit, got '$NODE_PREFIX'"
    need_root
    [[ $(uname -s) == Linux ]] || die "Linux only"
    local t0=$SECONDS

    if [[ $fresh == no ]] && cluster_healthy && [[ $(<"$SETTINGS") == "$(settings_text "$nodes" "$cpus" "$gpus" "$accounting")" ]]; then
        log "already up with the same settings ($(node_list "$nodes"))"
        return 0
    fi
    # Anything half-started, or started with other settings, is torn down first.
    cmd_down_inner keep
    [[ $fresh == yes ]] && purge_state

    install -d -m 0755 "$STATE" "$RUN" "$LOG" "$STATE/slurmctld" "$STATE/slurmd"
    install_packages "$accounting"
    for c in ip nsenter unshare slurmctld slurmd sbatch; do
        command -v "$c" >/dev/null || die "'$c' not found after installing packages"
    done
    local host
    host=$(hostname -s)
    [[ -n $host ]] || die "this machine has no hostname"

    start_munge
    net_up "$nodes"
    hosts_up "$nodes"
    [[ $accounting == yes ]] && [[ ! -s $STATE/db.pass ]] && (umask 077 && head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$STATE/db.pass")
    fake_gpus "$gpus"
    write_configs "$nodes" "$cpus" "$gpus" "$accounting" "$host"
    save_settings "$nodes" "$cpus" "$gpus" "$accounting"
    if [[ $accounting == yes ]]; then
        start_db
        start_slurmdbd
    fi
    start_slurmctld
    local i
    for ((i = 1; i <= nodes; i++)); do start_slurmd "$i"; done
    wait_until "$nodes slurmd registered" "$WAIT_SECS" all_nodes_responding "$nodes" ||
        { sinfo -N -l >&2; die "nodes did not register (logs: $LOG/slurmd-*.log, $LOG/slurmctld.log)"; }
    # A node drained or downed in an earlier run stays so in the saved state: this script owns
    # the cluster, so it resumes them; a node whose config is really wrong is drained again.
    local stuck
    stuck=$(sinfo -h -N -p "$PARTITION" -o '%N %T' | awk '$2 != "idle" {print $1}' | paste -sd, -)
    [[ -n $stuck ]] && scontrol update nodename="$stuck" state=resume >/dev/null 2>&1
    wait_until "$nodes nodes idle" 30 all_nodes_idle "$nodes" ||
        { sinfo -N -o '%N %T %E' >&2; die "nodes did not become idle (logs: $LOG/slurmd-*.log, $LOG/slurmctld.log)"; }
    log "up in $((SECONDS - t0)) s: $(node_list "$nodes"), $cpus CPUs and $gpus fake GPUs per node, partition '$PARTITION', accounting=$accounting"
}

stop_ns_processes() {
    # Everything still running inside a node namespace was started by its slurmd: job tasks
    # orphaned by a killed slurmstepd included. TERM, then KILL what is left.
    local ns pids sig
    for sig in TERM KILL; do
        pids=""
        for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$NS_PREFIX" || true); do
            pids+=" $(ip netns pids "$ns" 2>/dev/null | tr '\n' ' ')"
        done
        [[ -z ${pids// /} ]] && return 0
        # shellcheck disable=SC2086
        kill -"$sig" $pids 2>/dev/null || true
        local deadline=$((SECONDS + 10))
        while ((SECONDS < deadline)); do
            local alive=0 p
            for p in $pids; do [[ -d /proc/$p ]] && alive=1; done
            ((alive == 0)) && return 0
            sleep 0.1
        done
    done
}

cmd_down_inner() { # cmd_down_inner keep|purge
    local f
    for f in "$RUN"/slurmd-*.pid; do
        [[ -e $f ]] && stop_pidfile "$f" slurmd
    done
    stop_ns_processes
    stop_pidfile "$RUN/slurmctld.pid" slurmctld
    stop_pidfile "$RUN/slurmdbd.pid" slurmdbd
    stop_pidfile "$RUN/mysqld.pid" mariadbd
    stop_munge
    net_down
    hosts_down
    [[ $1 == purge ]] && purge_state
    return 0
}

purge_state() {
    local f
    for f in "$SLURM_CONF_FILE" "$CONF_DIR/gres.conf" "$CONF_DIR/slurmdbd.conf"; do
        [[ -e $f ]] && grep -qF "$MARK" "$f" && rm -f "$f"
    done
    [[ -n $STATE && $STATE != / ]] && rm -rf "$STATE"
}

cmd_down() {
    local mode=keep
    while (($#)); do
        case $1 in
            --purge) mode=purge; shift ;;
            *) die "down: unknown argument '$1' (expected --purge)" ;;
        esac
    done
    need_root
    cmd_down_inner "$mode"
    log "down$([[ $mode == purge ]] && echo ' (state and config removed)')"
}

cmd_status() {
    local NODES CPUS GPUS ACCOUNTING i ok=0
    if ! load_settings; then
        echo "local-slurm: never brought up (no $SETTINGS)"
        return 1
    fi
    echo "settings: nodes=$NODES cpus=$CPUS gpus=$GPUS accounting=$ACCOUNTING subnet=$SUBNET.0/24 state=$STATE"
    report() { printf '  %-22s %s\n' "$1" "$2"; }
    # check NAME PIDFILE COMM [DETAIL] — one line per daemon
    check() {
        if pid_alive "$2" "$3"; then
            report "$1" "up (pid $(<"$2")${4:+, $4})"
        else
            report "$1" DOWN
            ok=1
        fi
    }
    if munge_works; then report munged up; else report munged DOWN; ok=1; fi
    if [[ $ACCOUNTING == yes ]]; then
        check mariadbd "$RUN/mysqld.pid" mariadbd "127.0.0.1:$DB_PORT"
        check slurmdbd "$RUN/slurmdbd.pid" slurmdbd "$CTL_ADDR:$DBD_PORT"
    fi
    check slurmctld "$RUN/slurmctld.pid" slurmctld "$CTL_ADDR:$CTL_PORT"
    for ((i = 1; i <= NODES; i++)); do
        local n
        n=$(node_name "$i")
        check "slurmd $n" "$RUN/slurmd-$n.pid" slurmd "netns $NS_PREFIX$n, $SUBNET.$i:$SLURMD_PORT"
    done
    if ctld_up; then
        sinfo -N -o '%N %P %T %c %G' | sed 's/^/  /'
        cluster_healthy || ok=1
    else
        ok=1
    fi
    if ((ok == 0)); then echo "status: UP"; else echo "status: NOT HEALTHY"; fi
    return "$ok"
}

main() {
    local cmd=${1:-}
    (($#)) && shift
    case $cmd in
        up) cmd_up "$@" ;;
        down) cmd_down "$@" ;;
        status) cmd_status "$@" || exit 1 ;;
        selftest)
            # shellcheck source=scripts/local-slurm-selftest.sh
            source "$(dirname "$(readlink -f "$0")")/local-slurm-selftest.sh"
            cmd_selftest "$@" || exit 1
            ;;
        -h | --help | help) usage ;;
        *) usage ;;
    esac
}

main "$@"
