#!/bin/bash
# perfsanity batch script for trial disagg_upload-deepseek-r1-fp4_8k1k_ctx4_dep4_gen1_dep16_bs32_mtp3-NIXL
# config: /path/to/perfsanity/test_configs/disagg/perf/deepseek-r1-fp4_8k1k_ctx4_dep4_gen1_dep16_bs32_mtp3-NIXL.yaml (benchmark mode e2e, from benchmark.mode (e2e unless set))
# layout: GPUs per worker = tp x pp x cp; nodes per worker = ceil(GPUs / gpus_per_node); gen workers take the first nodes, then ctx
#   GEN: 1 worker(s) x 4 node(s), 16 GPU(s) each (tp 16, pp 1, cp 1; ep 16 not counted)
#   CTX: 4 worker(s) x 1 node(s), 4 GPU(s) each (tp 4, pp 1, cp 1; ep 4 not counted)
#   allocation: 8 node(s) x 4 GPU(s) = 32 GPUs
# Submit with `perfsanity slurm submit`, which writes this script to the trial directory;
# with plain sbatch create the output directory first: mkdir -p /shared/perf-output/disagg_upload-deepseek-r1-fp4_8k1k_ctx4_dep4_gen1_dep16_bs32_mtp3-NIXL
#SBATCH --job-name=perfsanity-dsr1-8k1k
#SBATCH --nodes=8
#SBATCH --ntasks=32
#SBATCH --ntasks-per-node=4
#SBATCH --gpus-per-node=4
#SBATCH '--partition=<partition>'
#SBATCH '--account=<account>'
#SBATCH --time=02:00:00
#SBATCH --output=/shared/perf-output/disagg_upload-deepseek-r1-fp4_8k1k_ctx4_dep4_gen1_dep16_bs32_mtp3-NIXL/slurm-%j.out
#SBATCH --gres=gpu:4

set -uo pipefail

# ---- literal settings: every value is quoted, nothing below is expanded ----
TRIAL=disagg_upload-deepseek-r1-fp4_8k1k_ctx4_dep4_gen1_dep16_bs32_mtp3-NIXL
TRIAL_DIR=/shared/perf-output/disagg_upload-deepseek-r1-fp4_8k1k_ctx4_dep4_gen1_dep16_bs32_mtp3-NIXL
STATUS_FILE="$TRIAL_DIR"/benchmark_status.0.txt
WORKDIR=/path/to/perfsanity
TOTAL_NODES=8
export PERFSANITY_BIN=/shared/perfsanity/bin/perfsanity
export PERF_TOOLCHAIN=trtllm
export PERF_CONFIG_DIRS=/path/to/perfsanity/test_configs/disagg/perf:/path/to/perfsanity/test_configs/wideep/perf
export PERF_OUTPUT_DIR=/shared/perf-output
export PERF_SCALE=full
export PERF_SIM_DATASETS=/shared/perf-datasets
export PERF_DB=/shared/perf-results.sqlite
export LLM_MODELS_ROOT=/shared/models
export PERF_LAUNCHER_GEN_LOGS=1
unset PERF_HOSTNAME DISAGG_SERVING_TYPE
# every role starts without the UCX settings of the submitting host
unset UCX_CUDA_IPC_ENABLE_MNNVL UCX_TLS UCX_NET_DEVICES UCX_TCP_AF_PRIO UCX_IB_GID_INDEX UCX_IB_TRAFFIC_CLASS UCX_IB_SL UCX_IB_MLX5_DEVX
CONTAINER_FLAGS=('--container-image=<container_image>' '--container-mounts=/shared:/shared,/path/to/perfsanity:/path/to/perfsanity' '--container-workdir=/path/to/perfsanity')
WORKER_MPI=('--mpi=pmix')
LLMAPI_LAUNCH=(trtllm-llmapi-launch)
# ---- end of literal settings ----

RESULT_FILE="$TRIAL_DIR/slurm-$SLURM_JOB_ID.result"
BACKGROUND=()

note() { printf '[perfsanity %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
# record KEY=VALUE…: facts for `perfsanity slurm submit` (which step failed, exit codes).
record() { printf '%s\n' "$@" >>"$RESULT_FILE"; }
# abort STAGE CODE MESSAGE: record why, then cancel the whole job (every step dies with it).
abort() {
    record "failed_stage=$1" "failed_exit=$2" "message=$3"
    note "FAILED ($1): $3; cancelling job $SLURM_JOB_ID"
    scancel "$SLURM_JOB_ID"
    exit 1
}
# step_ended ROLE CODE: a background step ended. A failure before the benchmark has finished
# cancels the job at once instead of letting the benchmark wait for it until slurm.timeout.
step_ended() {
    record "step_exit_$1=$2"
    if [ "$2" != 0 ] && [ ! -e "$STATUS_FILE" ]; then
        abort "$1" "$2" "step $1 exited $2 before the benchmark finished (see its log in $TRIAL_DIR)"
    fi
}

cd -- "$WORKDIR" || { echo "perfsanity: cannot cd to $WORKDIR" >&2; exit 1; }
mkdir -p -- "$TRIAL_DIR" || { echo "perfsanity: cannot create $TRIAL_DIR" >&2; exit 1; }
: >"$RESULT_FILE"
record "job_id=$SLURM_JOB_ID" "trial=$TRIAL"
# A status file of an earlier run would tell the new workers to stop at once.
rm -f -- "$STATUS_FILE"
[ "${#CONTAINER_FLAGS[@]}" -gt 0 ] && CONTAINER_FLAGS+=("--container-name=perfsanity-$SLURM_JOB_ID")

mapfile -t NODES < <(scontrol show hostnames "$SLURM_JOB_NODELIST")
if [ "${#NODES[@]}" -lt "$TOTAL_NODES" ]; then
    abort setup 1 "the allocation has ${#NODES[@]} node(s) ($SLURM_JOB_NODELIST); this trial needs $TOTAL_NODES"
fi
record "nodes=${NODES[*]}"
# slice FIRST COUNT: NODES[FIRST] … NODES[FIRST+COUNT-1], comma-separated (for srun -w).
slice() { local IFS=,; printf '%s' "${NODES[*]:$1:$2}"; }

# GEN_0: node(s) 0-3 of the allocation, 16 task(s), 4 per node, 16 GPU(s)
rm -f -- "$TRIAL_DIR"/gen_server_0.done
(
    srun --job-name=GEN_0 "${WORKER_MPI[@]}" --kill-on-bad-exit=1 -N 4 -w "$(slice 0 4)" --ntasks=16 --ntasks-per-node=4 "${CONTAINER_FLAGS[@]}" \
        "${LLMAPI_LAUNCH[@]}" "$PERFSANITY_BIN" run --role GEN_0 "$TRIAL" &>"$TRIAL_DIR"/gen_server_0.log
    rc=$?
    touch -- "$TRIAL_DIR"/gen_server_0.done
    step_ended GEN_0 "$rc"
) &
BACKGROUND+=($!)
sleep 5

# CTX_0: node(s) 4-4 of the allocation, 4 task(s), 4 per node, 4 GPU(s)
(
    srun --job-name=CTX_0 "${WORKER_MPI[@]}" --kill-on-bad-exit=1 -N 1 -w "$(slice 4 1)" --ntasks=4 --ntasks-per-node=4 "${CONTAINER_FLAGS[@]}" \
        "${LLMAPI_LAUNCH[@]}" "$PERFSANITY_BIN" run --role CTX_0 "$TRIAL" &>"$TRIAL_DIR"/ctx_server_0.log
    rc=$?
    step_ended CTX_0 "$rc"
) &
BACKGROUND+=($!)
sleep 5

# CTX_1: node(s) 5-5 of the allocation, 4 task(s), 4 per node, 4 GPU(s)
(
    srun --job-name=CTX_1 "${WORKER_MPI[@]}" --kill-on-bad-exit=1 -N 1 -w "$(slice 5 1)" --ntasks=4 --ntasks-per-node=4 "${CONTAINER_FLAGS[@]}" \
        "${LLMAPI_LAUNCH[@]}" "$PERFSANITY_BIN" run --role CTX_1 "$TRIAL" &>"$TRIAL_DIR"/ctx_server_1.log
    rc=$?
    step_ended CTX_1 "$rc"
) &
BACKGROUND+=($!)
sleep 5

# CTX_2: node(s) 6-6 of the allocation, 4 task(s), 4 per node, 4 GPU(s)
(
    srun --job-name=CTX_2 "${WORKER_MPI[@]}" --kill-on-bad-exit=1 -N 1 -w "$(slice 6 1)" --ntasks=4 --ntasks-per-node=4 "${CONTAINER_FLAGS[@]}" \
        "${LLMAPI_LAUNCH[@]}" "$PERFSANITY_BIN" run --role CTX_2 "$TRIAL" &>"$TRIAL_DIR"/ctx_server_2.log
    rc=$?
    step_ended CTX_2 "$rc"
) &
BACKGROUND+=($!)
sleep 5

# CTX_3: node(s) 7-7 of the allocation, 4 task(s), 4 per node, 4 GPU(s)
(
    srun --job-name=CTX_3 "${WORKER_MPI[@]}" --kill-on-bad-exit=1 -N 1 -w "$(slice 7 1)" --ntasks=4 --ntasks-per-node=4 "${CONTAINER_FLAGS[@]}" \
        "${LLMAPI_LAUNCH[@]}" "$PERFSANITY_BIN" run --role CTX_3 "$TRIAL" &>"$TRIAL_DIR"/ctx_server_3.log
    rc=$?
    step_ended CTX_3 "$rc"
) &
BACKGROUND+=($!)
sleep 5

# DISAGG_SERVER: the router, one task sharing the first node (--overlap).
(
    srun --job-name=DISAGG_SERVER --kill-on-bad-exit=1 --overlap -N 1 --ntasks=1 --ntasks-per-node=1 "${CONTAINER_FLAGS[@]}" \
        "$PERFSANITY_BIN" run --role DISAGG_SERVER "$TRIAL" &>"$TRIAL_DIR"/disagg_server.log
    step_ended DISAGG_SERVER "$?"
) &
BACKGROUND+=($!)
sleep 5

# BENCHMARK in the foreground: runs the clients, records the results, writes Done.
srun --job-name=BENCHMARK --kill-on-bad-exit=1 --overlap -N 1 --ntasks=1 --ntasks-per-node=1 "${CONTAINER_FLAGS[@]}" \
    "$PERFSANITY_BIN" run --role BENCHMARK "$TRIAL" &>"$TRIAL_DIR"/benchmark.log
rc=$?
record "benchmark_exit=$rc"
[ "$rc" = 0 ] || abort BENCHMARK "$rc" "the benchmark step exited $rc (see $TRIAL_DIR/benchmark.log)"
note "the benchmark finished; waiting up to 120 s for the other steps to see Done"
deadline=$((SECONDS + 120))
for pid in "${BACKGROUND[@]}"; do
    while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.2; done
done
if [ "$SECONDS" -ge "$deadline" ]; then
    note "some steps are still running; the job ends anyway and Slurm stops them"
    record "lingering_steps=1"
fi
record "outcome=completed"
note "trial $TRIAL finished"
exit 0
