# prune writes two outputs, the model and its --report. A signal at any moment must leave
# both old or both new (issue 17, item 9: never the new model beside the old report), and
# no temporary. Signals are sent at delays spread over a whole run.
. "$(dirname "$0")/../cli_lib.sh"
BIN="$D/stories260K/stories260K.bin"; TOK="$D/stories260K/tok512.bin"
set -m # background commands keep SIGINT (see interrupt.sh)
python3 "$(dirname "$0")/mcal.py" "$T/c.mcal"
echo previous >"$T/previous"
run() { exec "$MIPR" prune "$BIN" -z "$TOK" --calib "$T/c.mcal" --ratio 0.3 --criterion magnitude \
          -o "$T/o.gguf" --report "$T/r.json" "$@"; }
t0=$(date +%s%N); (run 2>/dev/null) || fail "prune"; t1=$(date +%s%N)
span=$(( (t1 - t0) / 1000 + 20000 )) # microseconds, and some
old=0 new=0
for k in $(seq 0 39); do
  cp "$T/previous" "$T/o.gguf"; cp "$T/previous" "$T/r.json"
  run 2>/dev/null & # exec: $! is mipr itself, not a subshell
  pid=$!
  sleep "$(printf '0.%06d' $(( span * k / 40 )))"
  kill -s $([ $((k % 2)) = 0 ] && echo INT || echo TERM) "$pid" 2>/dev/null
  wait "$pid"
  if cmp -s "$T/previous" "$T/o.gguf"; then
    old=$((old + 1))
    cmp -s "$T/previous" "$T/r.json" || fail "run $k: the old model beside a new report"
  else
    new=$((new + 1))
    cmp -s "$T/previous" "$T/r.json" && fail "run $k: the new model beside the old report"
    python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$T/r.json" || fail "run $k: report"
  fi
  left=$(compgen -G "$T/.*.tmp.*" || true)
  [ -z "$left" ] || { fail "run $k: temporary left: $left"; rm -f $left; }
done
echo "interrupted runs: $old left both outputs old, $new both new"
finish
