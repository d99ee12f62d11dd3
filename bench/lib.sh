# Shared by the runner benchmarks (sourced): a state root of the run's own
# on tmpfs, removed with every VM in it at exit; wall-clock and statistics
# helpers. Needs ${fcvm} set to the fcvm binary.

# tmpfs, as /run/fcvm is on a production host: the RAM files live here.
export FCVM_STATE_DIR="$(mktemp -d /dev/shm/fcvm-bench.XXXXXX)"
bench_cleanup() {
  "${fcvm}" ls --json | python3 -c "import json,sys; [print(v['name']) for v in json.load(sys.stdin)]" |
    xargs -r "${fcvm}" rm -f >/dev/null 2>&1 || true
  rm -rf "${FCVM_STATE_DIR}"
}
trap bench_cleanup EXIT
# Milliseconds since $1 (a `date +%s%N`).
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
# LABEL VALUE...: median, min and max of the values.
stats() { python3 -c "
import statistics,sys; v=[float(x) for x in sys.argv[2:]]
print('%s: median %.0f (%.0f to %.0f), n=%d' % (sys.argv[1], statistics.median(v), min(v), max(v), len(v)))" "$@"; }
