#!/bin/bash
# A Slurm array job: task I of the array scores shard I+1 of N with `cobuy recommend --shard`, each
# task loading the same model file from a shared file system. The shards partition the customers by
# a fixed hash of the id, so the N outputs together are the unsharded `cobuy recommend` rows.
#   sbatch examples/slurm-recommend.sh                  (MODEL, OUT, SHARDS may be set in the environment)
#SBATCH --job-name=cobuy-recommend
#SBATCH --array=0-7
#SBATCH --cpus-per-task=4
#SBATCH --mem=8G
set -euo pipefail
SHARDS=${SHARDS:-8}                     # the number of array tasks (--array=0-7 above)
MODEL=${MODEL:-/shared/cobuy/model.cobuy}
OUT=${OUT:-/shared/cobuy/out}
mkdir -p "$OUT"
cobuy --threads "${SLURM_CPUS_PER_TASK:-0}" recommend --model "$MODEL" --shard $((SLURM_ARRAY_TASK_ID+1))/$SHARDS --out "$OUT/recommendations-$((SLURM_ARRAY_TASK_ID+1))-of-$SHARDS.csv"
