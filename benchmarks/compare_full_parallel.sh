#!/usr/bin/env bash
# Run `gradmod compare --preset full` as several one-thread processes at once.
#
# Usage: bash benchmarks/compare_full_parallel.sh [WORKERS] [OUT]   (defaults: 2, runs/full)
#
# Every process takes one (training, seed) part of the matrix, longest first,
# and writes its runs into OUT/runs/KEY.json. A last invocation over the whole
# matrix then finds every run finished and writes results.json, report.md and
# the plots. The numbers equal those of one sequential `gradmod compare --preset
# full --threads 1 --out OUT`; only the wall time differs. Run it again to redo
# what an interruption left unfinished.
set -euo pipefail

workers="${1:-2}"
export OUT="${2:-runs/full}"
export GRADMOD_CLI="${GRADMOD_CLI:-gradmod}"
mkdir -p "$OUT/logs"

started=$(date +%s)
for training in fgsm_rs standard; do  # adversarial parts take longer: start them first
    for seed in 0 1 2; do
        echo "$training $seed"
    done
done | xargs -P "$workers" -L 1 sh -c '
    log="$OUT/logs/$1-seed$2.log"
    if "$GRADMOD_CLI" compare --preset full --training "$1" --seeds "$2" --threads 1 --quiet --out "$OUT" > "$log" 2>&1
    then echo "finished $1 seed $2"
    else echo "FAILED $1 seed $2 (see $log)"
    fi
' part
"$GRADMOD_CLI" compare --preset full --threads 1 --quiet --out "$OUT"
echo "wall time with $workers workers: $(( $(date +%s) - started )) s"
