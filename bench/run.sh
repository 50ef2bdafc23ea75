#!/bin/sh
# Run the benchmark with the OpenBLAS overrides of this machine removed.
#
# OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE may be set in the environment for safety; they select a
# slower (generic) kernel. The benchmark measures ferry with the BLAS numpy would pick by
# itself, so it unsets both for its own process only. Tests and CI leave them alone.
#
#   bench/run.sh [run.py options]      e.g. bench/run.sh --models resnet50 --batch 1 --quick
here=$(cd "$(dirname "$0")" && pwd)
python=${PYTHON:-"$here/../.venv/bin/python"}
unset_note=""
for var in OPENBLAS_CORETYPE OPENBLAS_L2_SIZE; do
    value=$(printenv "$var")
    if [ -n "$value" ]; then
        unset_note="$unset_note $var (was $value)"
    else
        unset_note="$unset_note $var (was not set)"
    fi
done
echo "bench/run.sh: running with env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE:$unset_note" >&2
FERRY_BENCH_UNSET="$unset_note" exec env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$python" "$here/run.py" "$@"
