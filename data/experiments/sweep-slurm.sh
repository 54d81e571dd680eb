#!/bin/bash
# The sparsity sweep of sweep.mk (beside this script) as Slurm jobs: one job
# trains the base model, a job array trains and measures one cell per task
# (prune, finetune, eval, compact, estimate), and a last job runs the benches
# one at a time on a whole node and writes sweep.csv and sweep.svg. Each
# waits for the one before (afterok), so a failed cell stops the table
# rather than leaving it short.
#
# Usage: sweep-slurm.sh [VAR=value...]   the variables of sweep.mk, e.g.
#   data/experiments/sweep-slurm.sh OUT=/shared/sweep BSP=/opt/bsp/bin/bsp DENSITIES="0.5 0.25"
# OUT must be on a file system every node sees (default: sweep-out beside the
# directory you submit from). Environment: CELL_CPUS (2) cores per cell,
# BASE_CPUS (every core of a node: 0) for the base model, SBATCH_OPTS
# (extra sbatch options for every job, e.g. "--partition=cpu --time=2:00:00").
# Prints the three job ids; `squeue --me` follows them. Each job's output is
# in bsp-sweep-{base,cell,table}-JOBID[_TASK].out in the submitting directory.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
vars=("$@")
# The make command each job runs, with this directory's sweep.mk and the
# variables given here, quoted for the job's shell.
mk="make -f $(printf %q "$here/sweep.mk")"
for v in ${vars[@]+"${vars[@]}"}; do mk+=" $(printf %q "$v")"; done
mapfile -t cells < <(eval "$mk -s cells")
[ "${#cells[@]}" -gt 0 ] || { echo "sweep-slurm.sh: sweep.mk lists no cells" >&2; exit 1; }
cell_cpus=${CELL_CPUS:-2}
# --kill-on-invalid-dep: a job whose predecessor failed is cancelled, not
# left pending.
opts=(--parsable --chdir "$PWD" --kill-on-invalid-dep=yes ${SBATCH_OPTS:-})
if [ "${BASE_CPUS:-0}" = 0 ]; then base_cpus=(--exclusive); else base_cpus=(--cpus-per-task "$BASE_CPUS"); fi
base=$(sbatch "${opts[@]}" --job-name bsp-sweep-base --output "%x-%j.out" "${base_cpus[@]}" --wrap "$mk base")
# Task i makes the i-th cell of `make cells` (the job's shell is sh: its
# argument list holds the cells).
cells_list=$(printf '%q ' "${cells[@]}")
arr=$(sbatch "${opts[@]}" --job-name bsp-sweep-cell --output "%x-%A_%a.out" --dependency "afterok:$base" \
  --array "0-$((${#cells[@]} - 1))" --cpus-per-task "$cell_cpus" \
  --wrap "set -- $cells_list; shift \$SLURM_ARRAY_TASK_ID; $mk JOB_THREADS=$cell_cpus cell CELL=\$1")
# The benches: a whole node to themselves (timings beside other work mean
# little), then the table.
table=$(sbatch "${opts[@]}" --job-name bsp-sweep-table --output "%x-%j.out" --dependency "afterok:$arr" --exclusive \
  --wrap "$mk all")
echo "base $base, cells $arr (${#cells[@]} tasks), table $table"
