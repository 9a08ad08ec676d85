# shellcheck shell=bash disable=SC2016,SC2153
# (job scripts are written with single-quoted $expressions on purpose; STATE etc. come from local-slurm.sh)
# local-slurm-selftest.sh — `local-slurm.sh selftest`: proves the local cluster behaves like the
# SLURM layout perfsanity's launcher relies on (upstream disaggregated layout), and that job state
# and exit code can be read back after a job ends. Sourced by local-slurm.sh; not run on its own.
#
# Jobs submitted (all through sbatch, checked through sacct, scontrol and squeue):
#   layout      GEN/CTX worker steps pinned with `srun -w <slice> -N k --ntasks --ntasks-per-node`
#               (one of them on 2 nodes, with --mpi=pmix), an `--overlap` router step that talks
#               TCP to every worker over the node network, a foreground `--overlap` benchmark step;
#               rendezvous through files in a shared directory             → COMPLETED 0:0
#   fail        batch script exits 3                                       → FAILED 3:0
#   selfcancel  benchmark step fails, the script scancels its own job      → CANCELLED
#   cancel      long-running steps on 2 nodes, `scancel` from the login node → CANCELLED
#   timeout     --time=1 with a step that outlives it (skipped by --quick) → TIMEOUT
# For the cancelled/timed-out jobs it also checks that every task process is gone.

ST_FAILS=()
st_fail() { ST_FAILS+=("$*"); log "FAIL: $*"; }
st_ok() { log "ok: $*"; }

# st_accounting_state JOBID → "STATE|EXITCODE" of the allocation, from the accounting DB
st_accounting_state() { sacct -j "$1" -X -n -P -o State,ExitCode 2>/dev/null | head -n 1; }
# st_ctld_state JOBID → "STATE|EXITCODE" from slurmctld (kept MinJobAge seconds after the end)
st_ctld_state() {
    scontrol -o show job "$1" 2>/dev/null | tr ' ' '\n' |
        awk -F= '$1 == "JobState" {s = $2} $1 == "ExitCode" {e = $2} END {if (s != "") print s "|" e}'
}
st_terminal() { # st_terminal "STATE|EXIT" — a state after which the job never runs again
    case ${1%%|*} in
        COMPLETED | FAILED | CANCELLED* | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY | BOOT_FAIL | DEADLINE | PREEMPTED) return 0 ;;
        *) return 1 ;;
    esac
}
st_done() { # st_done JOBID — finished according to every status source in use
    st_terminal "$(st_ctld_state "$1")" || return 1
    [[ $ACCOUNTING == yes ]] || return 0
    st_terminal "$(st_accounting_state "$1")"
}

# st_expect NAME JOBID STATE EXITCODE|- — compare every status source with the expectation.
st_expect() {
    local name=$1 id=$2 want=$3 want_exit=$4 got src
    for src in ctld accounting completion squeue; do
        case $src in
            ctld) got=$(st_ctld_state "$id") ;;
            accounting) [[ $ACCOUNTING == yes ]] || continue; got=$(st_accounting_state "$id") ;;
            completion) got=$(sacct -c -j "$id" -n -P -o State,ExitCode 2>/dev/null | head -n 1) ;;
            squeue) got="$(squeue -h -j "$id" --states=all -o '%T' 2>/dev/null | head -n 1)|" ;;
        esac
        # sacct writes "CANCELLED by <uid>"; the state word is what counts.
        local state=${got%%|*} exit=${got#*|}
        state=${state%% *}
        if [[ $state != "$want" ]]; then
            st_fail "$name (job $id): $src says state '${got%%|*}', expected $want"
        elif [[ $want_exit != - && $src != squeue && $exit != "$want_exit" ]]; then
            st_fail "$name (job $id): $src says exit code '$exit', expected $want_exit"
        else
            st_ok "$name (job $id): $src → $got"
        fi
    done
}

# st_pids_gone NAME DIR — every task pid recorded under DIR/tasks has exited (30 s grace).
st_pids_gone() {
    local name=$1 dir=$2 f pid left deadline=$((SECONDS + 30))
    while :; do
        left=""
        for f in "$dir"/tasks/*; do
            [[ -e $f ]] || continue
            pid=$(sed -n 's/.* pid=\([0-9]*\).*/\1/p' "$f")
            [[ -n $pid ]] && tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF "$dir" && left+=" $pid"
        done
        [[ -z $left ]] && { st_ok "$name: all task processes are gone"; return; }
        ((SECONDS < deadline)) || { st_fail "$name: task processes still alive after the job ended:$left"; return; }
        sleep 0.5
    done
}

st_tasks_at_least() { (($(find "$1/tasks" -type f | wc -l) >= $2)); }

# st_field FILE KEY — value of KEY=... in a task record
st_field() { sed -n "s/.*\\b$2=\\([^ ]*\\).*/\\1/p" "$1"; }

st_write_helpers() {
    local d=$1
    # A worker task: records where it runs; rank 0 serves TCP on its own hostname, like a
    # trtllm-serve worker started with --host $(hostname) --port 0 --report_addr <file>.
    cat >"$d/worker.sh" <<'EOF'
#!/bin/bash
set -eu
dir=$1 wait_secs=$2
role=${DISAGG_SERVING_TYPE:?} rank=${SLURM_PROCID:?}
echo "role=$role rank=$rank hostname=$(hostname) nodename=${SLURMD_NODENAME:-} nodeid=${SLURM_NODEID:-} step=${SLURM_STEP_ID:-} pid=$$ pmix_rank=${PMIX_RANK:-none} gpus=${CUDA_VISIBLE_DEVICES:-none} dir=$dir" >"$dir/tasks/$role.$rank"
if [[ $rank == 0 ]]; then
    exec perl "$dir/serve.pl" "$dir/hostnames/$role.txt" "$role" "$dir/benchmark_status.txt" "$wait_secs" "$dir"
fi
end=$((SECONDS + wait_secs))
until [[ -e $dir/benchmark_status.txt ]]; do
    ((SECONDS < end)) || { echo "$role rank $rank: no benchmark status after ${wait_secs}s" >&2; exit 1; }
    sleep 0.5
done
EOF
    cat >"$d/serve.pl" <<'EOF'
# serve.pl ADDR_FILE ROLE STATUS_FILE SECONDS — listen on (hostname, 0), publish host:port
# atomically, answer "ROLE@hostname" to every connection until STATUS_FILE exists.
use strict; use warnings; use IO::Socket::INET; use IO::Select; use Sys::Hostname;
my ($addr_file, $role, $status, $secs) = @ARGV;
my $host = hostname();
my $srv = IO::Socket::INET->new(LocalAddr => $host, LocalPort => 0, Listen => 16, ReuseAddr => 1)
    or die "$role: cannot listen on $host: $!\n";
open(my $fh, '>', "$addr_file.$$.tmp") or die "$role: $addr_file: $!\n";
print $fh "$host:" . $srv->sockport . "\n"; close $fh;
rename("$addr_file.$$.tmp", $addr_file) or die "$role: rename: $!\n";
my $sel = IO::Select->new($srv); my $end = time + $secs;
until (-e $status) {
    die "$role: no benchmark status after ${secs}s\n" if time > $end;
    next unless $sel->can_read(0.5);
    my $c = $srv->accept or next; print $c "$role\@$host\n"; close $c;
}
EOF
    cat >"$d/probe.pl" <<'EOF'
# probe.pl HOST:PORT — print the one-line answer of a serve.pl
use strict; use warnings; use IO::Socket::INET;
my ($host, $port) = $ARGV[0] =~ /^(.*):(\d+)$/ or die "bad address '$ARGV[0]'\n";
my $s = IO::Socket::INET->new(PeerAddr => $host, PeerPort => $port, Timeout => 10)
    or die "connect $ARGV[0]: $!\n";
my $line = <$s>; defined $line or die "no answer from $ARGV[0]\n"; print $line;
EOF
    # The router (DISAGG_SERVER): waits for every worker address, connects to each over the node
    # network, publishes its own address, then waits for the benchmark like upstream's roles do.
    cat >"$d/router.sh" <<'EOF'
#!/bin/bash
set -eu
dir=$1 expected=$2 wait_secs=$3
end=$((SECONDS + wait_secs))
echo "pid=$$ hostname=$(hostname) dir=$dir" >"$dir/tasks/DISAGG_SERVER.0"
until (($(find "$dir/hostnames" -maxdepth 1 -name '*.txt' | wc -l) >= expected)); do
    ((SECONDS < end)) || { echo "router: only $(ls "$dir/hostnames") after ${wait_secs}s" >&2; exit 1; }
    sleep 0.5
done
for f in "$dir"/hostnames/*.txt; do
    addr=$(tr -d '[:space:]' <"$f")
    echo "$(basename "$f" .txt) $addr $(perl "$dir/probe.pl" "$addr") from=$(hostname)"
done >"$dir/router.txt.tmp"
mv "$dir/router.txt.tmp" "$dir/router.txt"
echo "$(hostname):0" >"$dir/hostnames/DISAGG_SERVER.addr"
until [[ -e $dir/benchmark_status.txt ]]; do
    ((SECONDS < end)) || { echo "router: no benchmark status" >&2; exit 1; }
    sleep 0.5
done
EOF
    # The benchmark: waits for the router, records where it ran, tells everyone to stop.
    cat >"$d/bench.sh" <<'EOF'
#!/bin/bash
set -eu
dir=$1 wait_secs=$2
end=$((SECONDS + wait_secs))
until [[ -s $dir/hostnames/DISAGG_SERVER.addr ]]; do
    ((SECONDS < end)) || { echo "bench: no router address after ${wait_secs}s" >&2; exit 1; }
    sleep 0.5
done
echo "hostname=$(hostname) nodename=${SLURMD_NODENAME:-} router=$(<"$dir/hostnames/DISAGG_SERVER.addr")" >"$dir/bench.txt"
echo Done >"$dir/benchmark_status.txt"
EOF
    chmod +x "$d"/*.sh
}

# st_job_dir ROOT NAME — a fresh shared directory for one job
st_job_dir() {
    local d=$1/$2
    install -d "$d/tasks" "$d/hostnames"
    cp "$1"/worker.sh "$1"/serve.pl "$1"/probe.pl "$1"/router.sh "$1"/bench.sh "$d/"
    echo "$d"
}

# st_sbatch_header NAME DIR NODES [extra #SBATCH lines...]
st_sbatch_header() {
    local name=$1 d=$2 n=$3
    shift 3
    echo '#!/bin/bash'
    echo "#SBATCH --job-name=ps-selftest-$name"
    echo "#SBATCH --output=$d/slurm_%j.log"
    echo "#SBATCH --nodes=$n"
    echo "#SBATCH --partition=$PARTITION"
    local line
    for line in "$@"; do echo "#SBATCH $line"; done
    echo 'set -Eeuo pipefail'
    echo "dir=$d"
    echo 'mapfile -t nodes < <(scontrol show hostnames "$SLURM_JOB_NODELIST")'
    # launch ROLE SLICE NNODES NTASKS PER_NODE WAIT — a backgrounded worker step, as upstream does
    cat <<'EOF'
launch() {
    local role=$1 slice=$2 nn=$3 ntasks=$4 per=$5 wait=$6
    (
        rc=0
        DISAGG_SERVING_TYPE=$role srun --mpi=pmix --kill-on-bad-exit=1 -N "$nn" -w "$slice" \
            --ntasks="$ntasks" --ntasks-per-node="$per" "$dir/worker.sh" "$dir" "$wait" &>"$dir/$role.log" || rc=$?
        echo "$rc" >"$dir/$role.rc"
    ) &
}
EOF
}

st_submit() { # st_submit SCRIPT → job id (from "Submitted batch job N", as upstream parses it)
    local out
    out=$(sbatch "$1") || die "sbatch $1 failed: $out"
    [[ $out =~ ^Submitted\ batch\ job\ ([0-9]+)$ ]] || die "unexpected sbatch output: $out"
    echo "${BASH_REMATCH[1]}"
}

cmd_selftest() {
    local quick=no
    while (($#)); do
        case $1 in
            --quick) quick=yes; shift ;;
            *) die "selftest: unknown argument '$1' (expected --quick)" ;;
        esac
    done
    local NODES CPUS GPUS ACCOUNTING
    load_settings || die "selftest: the cluster was never brought up; run '$0 up' first"
    cluster_healthy || die "selftest: the cluster is not healthy; see '$0 status'"
    ((NODES >= 3)) || die "selftest: needs at least 3 nodes (1 ctx + 2 gen workers, each on its own nodes); bring the cluster up with --nodes 3 or more"
    ((CPUS >= 2)) || die "selftest: needs at least 2 CPUs per node"
    local t0=$SECONDS root
    root=$STATE/selftest/$(date +%Y%m%d-%H%M%S)-$$
    install -d "$root"
    st_write_helpers "$root"
    log "selftest directory (shared by all nodes): $root"

    # ---- layout: 4 nodes → GEN_0 on 2 nodes, GEN_1 and CTX_0 on one each; 3 nodes → one each
    local L=$((NODES >= 4 ? 4 : 3)) d_layout gpu_line=()
    d_layout=$(st_job_dir "$root" layout)
    ((GPUS >= 2)) && gpu_line=("--gpus-per-node=2")
    {
        st_sbatch_header layout "$d_layout" "$L" "--ntasks=$((L * 2))" "--ntasks-per-node=2" "--time=00:05:00" "${gpu_line[@]}"
        cat <<EOF
if ((\${#nodes[@]} >= 4)); then
    launch GEN_0 "\${nodes[0]},\${nodes[1]}" 2 4 2 120
    launch GEN_1 "\${nodes[2]}" 1 2 2 120
    launch CTX_0 "\${nodes[3]}" 1 1 1 120
else
    launch GEN_0 "\${nodes[0]}" 1 2 2 120
    launch GEN_1 "\${nodes[1]}" 1 2 2 120
    launch CTX_0 "\${nodes[2]}" 1 1 1 120
fi
(
    rc=0
    DISAGG_SERVING_TYPE=DISAGG_SERVER srun --kill-on-bad-exit=1 --overlap -N 1 --ntasks=1 --ntasks-per-node=1 \\
        "\$dir/router.sh" "\$dir" 3 120 &>"\$dir/disagg_server.log" || rc=\$?
    echo "\$rc" >"\$dir/DISAGG_SERVER.rc"
) &
if ! DISAGG_SERVING_TYPE=BENCHMARK srun --kill-on-bad-exit=1 --overlap -N 1 --ntasks=1 --ntasks-per-node=1 \\
        "\$dir/bench.sh" "\$dir" 120 &>"\$dir/benchmark.log"; then
    scancel "\$SLURM_JOB_ID"
    exit 1
fi
wait
for f in "\$dir"/*.rc; do
    [[ \$(<"\$f") == 0 ]] || { echo "step \$(basename "\$f" .rc) exited \$(<"\$f")"; exit 1; }
done
EOF
    } >"$d_layout/job.sbatch"

    # ---- fail: the batch script exits 3 after a successful step
    local d_fail
    d_fail=$(st_job_dir "$root" fail)
    {
        st_sbatch_header fail "$d_fail" 1 "--time=00:05:00"
        echo 'srun -N 1 --ntasks=1 true'
        echo 'exit 3'
    } >"$d_fail/job.sbatch"

    # ---- selfcancel: upstream's failure path — benchmark step fails → scancel own job
    local d_self
    d_self=$(st_job_dir "$root" selfcancel)
    {
        st_sbatch_header selfcancel "$d_self" 2 "--time=00:05:00"
        cat <<'EOF'
launch GEN_0 "${nodes[1]}" 1 2 2 300
until (($(ls "$dir/tasks" | wc -l) >= 2)); do sleep 0.5; done
if ! DISAGG_SERVING_TYPE=BENCHMARK srun --kill-on-bad-exit=1 --overlap -N 1 --ntasks=1 bash -c 'exit 1' &>"$dir/benchmark.log"; then
    scancel "$SLURM_JOB_ID"
    exit 1
fi
wait
EOF
    } >"$d_self/job.sbatch"

    # ---- cancel: long-running steps, cancelled from the login node once they run
    local d_cancel
    d_cancel=$(st_job_dir "$root" cancel)
    {
        st_sbatch_header cancel "$d_cancel" 2 "--time=00:05:00"
        cat <<'EOF'
launch GEN_0 "${nodes[0]},${nodes[1]}" 2 2 1 300
DISAGG_SERVING_TYPE=BENCHMARK srun --overlap -N 1 --ntasks=1 "$dir/worker.sh" "$dir" 300 &>"$dir/benchmark.log"
wait
EOF
    } >"$d_cancel/job.sbatch"

    # ---- timeout: a step that outlives --time=1
    local d_timeout=""
    if [[ $quick == no ]]; then
        d_timeout=$(st_job_dir "$root" timeout)
        {
            st_sbatch_header timeout "$d_timeout" 1 "--time=1"
            echo 'launch GEN_0 "${nodes[0]}" 1 1 1 600'
            echo 'wait'
        } >"$d_timeout/job.sbatch"
    fi

    local j_layout j_fail j_self j_cancel j_timeout=""
    j_layout=$(st_submit "$d_layout/job.sbatch")
    [[ -n $d_timeout ]] && j_timeout=$(st_submit "$d_timeout/job.sbatch")
    j_cancel=$(st_submit "$d_cancel/job.sbatch")
    j_fail=$(st_submit "$d_fail/job.sbatch")
    j_self=$(st_submit "$d_self/job.sbatch")
    log "submitted: layout=$j_layout fail=$j_fail selfcancel=$j_self cancel=$j_cancel${j_timeout:+ timeout=$j_timeout}"

    # Cancel 'cancel' from outside once all three of its tasks run.
    if wait_until "job $j_cancel tasks running" 240 st_tasks_at_least "$d_cancel" 3; then
        scancel "$j_cancel"
        log "scancel $j_cancel"
    else
        st_fail "cancel (job $j_cancel): its tasks did not start within 240 s; state $(st_ctld_state "$j_cancel")"
        scancel "$j_cancel" || true
    fi

    local id
    for id in $j_layout $j_fail $j_self $j_cancel $j_timeout; do
        wait_until "job $id finished" 240 st_done "$id" ||
            st_fail "job $id did not finish within 240 s (slurmctld: $(st_ctld_state "$id"), sacct: $(st_accounting_state "$id"))"
    done

    # ---- layout checks
    st_expect layout "$j_layout" COMPLETED 0:0
    local f role want_nodes
    local alloc_list
    alloc_list=$(squeue -h -j "$j_layout" --states=all -o %N)
    [[ $ACCOUNTING == yes ]] && alloc_list=$(sacct -j "$j_layout" -X -n -P -o NodeList)
    mapfile -t alloc < <(scontrol show hostnames "$alloc_list")
    if ((${#alloc[@]} != L)); then
        st_fail "layout (job $j_layout): expected $L allocated nodes, got '${alloc[*]}'"
    else
        local -A expect_nodes expect_tasks
        if ((L >= 4)); then
            expect_nodes=([GEN_0]="${alloc[0]} ${alloc[1]}" [GEN_1]="${alloc[2]}" [CTX_0]="${alloc[3]}")
            expect_tasks=([GEN_0]=4 [GEN_1]=2 [CTX_0]=1)
        else
            expect_nodes=([GEN_0]="${alloc[0]}" [GEN_1]="${alloc[1]}" [CTX_0]="${alloc[2]}")
            expect_tasks=([GEN_0]=2 [GEN_1]=2 [CTX_0]=1)
        fi
        for role in GEN_0 GEN_1 CTX_0; do
            local got_nodes="" n=0 bad=""
            for f in "$d_layout"/tasks/"$role".*; do
                [[ -e $f ]] || continue
                n=$((n + 1))
                local hn nn rank pr
                hn=$(st_field "$f" hostname) nn=$(st_field "$f" nodename) rank=$(st_field "$f" rank) pr=$(st_field "$f" pmix_rank)
                [[ $hn == "$nn" ]] || bad+=" rank $rank: hostname '$hn' != SLURMD_NODENAME '$nn';"
                [[ $pr == "$rank" ]] || bad+=" rank $rank: PMIX_RANK '$pr' (expected $rank with --mpi=pmix);"
                got_nodes+=" $nn"
            done
            got_nodes=$(tr ' ' '\n' <<<"$got_nodes" | sed '/^$/d' | sort -u | paste -sd' ' -)
            want_nodes=$(tr ' ' '\n' <<<"${expect_nodes[$role]}" | sort -u | paste -sd' ' -)
            if ((n != expect_tasks[$role])); then
                st_fail "layout: $role ran $n tasks, expected ${expect_tasks[$role]} (see $d_layout/$role.log)"
            elif [[ $got_nodes != "$want_nodes" ]]; then
                st_fail "layout: $role ran on '$got_nodes', expected its -w slice '$want_nodes'"
            elif [[ -n $bad ]]; then
                st_fail "layout: $role:$bad"
            else
                st_ok "layout: $role ran $n tasks on its slice '$got_nodes' (hostname = SLURMD_NODENAME, PMIx ranks set)"
            fi
        done
        # GEN_0 spans 2 nodes with 2 tasks per node when there are 4 nodes
        if ((L >= 4)); then
            local per
            per=$(for f in "$d_layout"/tasks/GEN_0.*; do st_field "$f" nodename; done | sort | uniq -c | awk '{print $1}' | sort -u | paste -sd, -)
            if [[ $per == 2 ]]; then
                st_ok "layout: GEN_0 has 2 tasks on each of its 2 nodes (--ntasks-per-node)"
            else
                st_fail "layout: GEN_0 tasks per node '$per', expected 2 on each node"
            fi
        fi
    fi
    if [[ -s $d_layout/router.txt ]]; then
        local lines cross=0 router_host line
        lines=$(wc -l <"$d_layout/router.txt")
        router_host=$(sed -n 's/.*from=\([^ ]*\).*/\1/p' "$d_layout/router.txt" | head -n 1)
        ((lines == 3)) || st_fail "layout: router reached $lines workers, expected 3 (see $d_layout/router.txt)"
        while read -r line; do
            local rname raddr reply rhost
            read -r rname raddr reply _ <<<"$line"
            rhost=${raddr%:*}
            [[ $reply == "$rname@$rhost" ]] || st_fail "layout: router got '$reply' from $rname at $raddr, expected '$rname@$rhost'"
            [[ $rhost != "$router_host" ]] && cross=$((cross + 1))
        done <"$d_layout/router.txt"
        if ((cross >= 1)); then
            st_ok "layout: router on $router_host reached every worker by hostname:port, $cross of them on other nodes"
        else
            st_fail "layout: router never talked to another node"
        fi
    else
        st_fail "layout: the router step wrote no $d_layout/router.txt (see $d_layout/disagg_server.log)"
    fi
    if [[ -s $d_layout/bench.txt && -e $d_layout/benchmark_status.txt ]]; then
        st_ok "layout: benchmark step ran alongside the workers and router ($(<"$d_layout/bench.txt"))"
    else
        st_fail "layout: the benchmark step did not finish its rendezvous (see $d_layout/benchmark.log)"
    fi
    if [[ $ACCOUNTING == yes ]]; then
        local steps
        steps=$(sacct -j "$j_layout" -n -P -o JobID,State | grep -cE "^$j_layout\.[0-9]+\|COMPLETED$" || true)
        if ((steps >= 5)); then
            st_ok "layout: sacct lists $steps COMPLETED steps"
        else
            st_fail "layout: sacct lists $steps COMPLETED steps, expected 5 (3 workers, router, benchmark)"
        fi
    fi

    # ---- the other jobs
    st_expect fail "$j_fail" FAILED 3:0
    st_expect selfcancel "$j_self" CANCELLED -
    st_pids_gone selfcancel "$d_self"
    st_expect cancel "$j_cancel" CANCELLED -
    st_pids_gone cancel "$d_cancel"
    if [[ -n $j_timeout ]]; then
        st_expect timeout "$j_timeout" TIMEOUT -
        st_pids_gone timeout "$d_timeout"
    fi

    {
        echo "# status of the selftest jobs after they ended"
        for id in $j_layout $j_fail $j_self $j_cancel $j_timeout; do
            echo "\$ sacct -j $id -X -n -P -o JobID,JobName,State,ExitCode"
            [[ $ACCOUNTING == yes ]] && sacct -j "$id" -X -n -P -o JobID,JobName,State,ExitCode
            echo "\$ scontrol -o show job $id | grep -o 'JobState=[^ ]*\\|ExitCode=[^ ]*'"
            scontrol -o show job "$id" | grep -o 'JobState=[^ ]*\|ExitCode=[^ ]*'
        done
    } >"$root/status.txt" 2>&1

    if ((${#ST_FAILS[@]})); then
        log "selftest FAILED after $((SECONDS - t0)) s (${#ST_FAILS[@]} problems); files in $root:"
        printf '  - %s\n' "${ST_FAILS[@]}" >&2
        return 1
    fi
    log "selftest passed in $((SECONDS - t0)) s (files in $root)"
}
