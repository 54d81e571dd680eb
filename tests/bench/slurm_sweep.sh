#!/bin/bash
# Runs data/experiments/sweep-slurm.sh on a private single-node Slurm
# (Debian's slurm-wlm: slurmctld and slurmd on this host, started here with
# their own configuration, ports and spool in a temporary directory, no
# munge: auth/none), with the sweep's check sizes (two cells, 1,000 images)
# unless variables are given, and checks the table it writes. Needs root
# (slurmd runs the jobs as the submitting user) and slurm-wlm installed.
#   tests/bench/slurm_sweep.sh [BUILD [VAR=value...]]
# BUILD (default build) holds bsp. The daemons are stopped at the end.
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:-build}" && pwd)
shift || true
vars=("$@")
[ ${#vars[@]} -gt 0 ] || vars=(PATTERNS="block:8x8 nm" DENSITIES=0.5 BASE_EPOCHS=1 EPOCHS=1 REPS=3
                              TRAIN_OPTS="--limit 1000" EVAL_OPTS="--limit 500")
for t in slurmctld slurmd sbatch squeue sacct; do
  command -v "$t" >/dev/null || { echo "slurm_sweep.sh: '$t' not found: install slurm-wlm" >&2; exit 1; }
done
dir=$(mktemp -d /tmp/bsp-slurm.XXXXXX)
export SLURM_CONF="$dir/slurm.conf"
node=$(hostname -s)
mem=$(awk '/MemTotal/ {print int($2 / 1024 * 0.8)}' /proc/meminfo)
mkdir -p "$dir/state" "$dir/spool" "$dir/out"
cat >"$SLURM_CONF" <<EOF
ClusterName=bsp-test
SlurmctldHost=$node
SlurmctldPort=16817
SlurmdPort=16818
SlurmUser=root
AuthType=auth/none
CredType=cred/none
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
ProctrackType=proctrack/pgid
TaskPlugin=task/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$dir/jobcomp.txt
ReturnToService=2
NodeName=$node CPUs=$(nproc) RealMemory=$mem State=UNKNOWN
PartitionName=test Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF
stop() {
  for d in slurmd slurmctld; do [ -f "$dir/$d.pid" ] && kill "$(cat "$dir/$d.pid")" 2>/dev/null || true; done
}
trap stop EXIT
slurmctld -c -f "$SLURM_CONF"
slurmd -f "$SLURM_CONF"
for _ in $(seq 60); do
  sinfo -h -o %T 2>/dev/null | grep -qE '^(idle|mixed)' && break
  sleep 1
done
sinfo
cd "$dir/out"
start=$(date +%s)
"$src/data/experiments/sweep-slurm.sh" BSP="$build/bsp" OUT="$dir/out/sweep" "${vars[@]}"
while [ -n "$(squeue -h 2>/dev/null)" ]; do sleep 5; done
echo "slurm_sweep.sh: the jobs took $(($(date +%s) - start)) s"
cat "$dir/jobcomp.txt" | sed 's/ NodeList.*//'
csv="$dir/out/sweep/sweep.csv"
if [ ! -s "$csv" ]; then
  echo "slurm_sweep.sh: no sweep.csv; the job outputs:" >&2
  tail -n 5 "$dir"/out/*.out >&2
  exit 1
fi
cat "$csv"
if grep -q "JobState=" "$dir/jobcomp.txt" && grep "JobState=" "$dir/jobcomp.txt" | grep -vq "JobState=COMPLETED"; then
  echo "slurm_sweep.sh: a job did not complete" >&2
  exit 1
fi
# Data-parallel finetuning inside an allocation: two ranks started by srun
# (bsp-finetune(1), DATA-PARALLEL TRAINING) instead of mpirun.
"$build/bsp" init --arch fmnist-cnn -o "$dir/m0.h5" -q
srun --mpi="${SRUN_MPI:-pmix}" -n 2 --cpus-per-task 1 "$build/bsp" finetune "$dir/m0.h5" --data fashion-mnist \
  --epochs 1 --limit 512 --batch 64 --threads 1 -o "$dir/dp.h5" | tee "$dir/srun.out"
grep -q "data-parallel: 2 ranks" "$dir/srun.out" || { echo "slurm_sweep.sh: srun did not start 2 ranks" >&2; exit 1; }
[ -s "$dir/dp.h5" ] || { echo "slurm_sweep.sh: srun's finetune wrote no model" >&2; exit 1; }
echo "slurm_sweep.sh: ok ($dir)"
