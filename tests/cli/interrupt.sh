# Interrupted and failed writes leave the previous file byte for byte and no temporary:
# SIGINT and SIGTERM during convert, calibrate and prune; a full disk (RLIMIT_FSIZE).
. "$(dirname "$0")/../cli_lib.sh"
BIN="$D/stories260K/stories260K.bin"; TOK="$D/stories260K/tok512.bin"
TXT="$D/text/tinystories/tinystories_train_head.txt"
# Job control: without it, bash starts background commands with SIGINT ignored (and mipr,
# like any tool, leaves an inherited "ignore" alone).
set -m

"$MIPR" calibrate "$BIN" -z "$TOK" --text "$TXT" --tokens 3000 --samples 32 --heldout 256 \
  -o "$T/c.mcal" 2>"$T/cal.err" || fail "calibrate: $(cat "$T/cal.err")"
head -c 5000 "$TXT" >"$T/previous"  # what every output holds before the interrupted run
mkfifo "$T/fifo"                    # opening it blocks: a run that waits, deterministically

temps() { compgen -G "$T/.*.tmp.*" || true; }

# interrupted SIG OUT -- command...: start the command (writing OUT over a copy of
# "previous"), wait until its temporary exists, send SIG; then the command must have died of
# SIG, OUT must equal "previous", and no temporary may remain.
interrupted() {
  local sig=$1 out=$2; shift 3
  cp "$T/previous" "$out"
  "$@" >/dev/null 2>"$T/int.err" &
  local pid=$! i
  for ((i = 0; i < 1000; i++)); do [ -n "$(temps)" ] && break; sleep 0.01; done
  [ -n "$(temps)" ] || fail "$*: no temporary appeared"
  kill -s "$sig" "$pid"
  wait "$pid"
  local got=$? want=$((128 + $(kill -l "$sig")))
  [ "$got" = "$want" ] || fail "$* (SIG$sig): exit $got, expected $want; $(head -c 300 "$T/int.err")"
  cmp -s "$T/previous" "$out" || fail "$* (SIG$sig): $out was changed"
  [ -z "$(temps)" ] || fail "$* (SIG$sig): temporary left: $(temps)"
  rm -f "$T"/.*.tmp.* 2>/dev/null
}

# Blocked on the FIFO (tokenizer, text or calibration record) with the output open.
interrupted INT "$T/o.gguf" -- "$MIPR" convert "$BIN" -z "$T/fifo" -o "$T/o.gguf"
interrupted TERM "$T/o.gguf" -- "$MIPR" convert "$BIN" -z "$T/fifo" -o "$T/o.gguf" --type q8_0
interrupted INT "$T/o.mcal" -- "$MIPR" calibrate "$BIN" -z "$TOK" --text "$T/fifo" -o "$T/o.mcal"
interrupted TERM "$T/o.gguf" -- "$MIPR" prune "$BIN" -z "$TOK" --calib "$T/fifo" --ratio 0.3 \
  -o "$T/o.gguf"
# Busy: a long calibration (50,000 tokens, seconds) and a prune with its report, two threads
interrupted TERM "$T/o.mcal" -- "$MIPR" calibrate "$BIN" -z "$TOK" --text "$TXT" --tokens 50000 \
  --threads 2 -o "$T/o.mcal"
interrupted INT "$T/o.mcal" -- "$MIPR" calibrate "$BIN" -z "$TOK" --text "$TXT" --tokens 50000 \
  -o "$T/o.mcal"
cp "$T/previous" "$T/r.json"
interrupted INT "$T/o.gguf" -- "$MIPR" prune "$BIN" -z "$TOK" --calib "$T/c.mcal" --ratio 0.3 \
  --seeds 100 --criterion random -o "$T/o.gguf" --report "$T/r.json"
cmp -s "$T/previous" "$T/r.json" || fail "prune (SIGINT): the report was changed"

# A full disk: file size limited to 16 KiB (ulimit -f counts KiB in bash). mipr ignores
# SIGXFSZ, so the write fails with EFBIG and is reported naming the file.
full() {
  local out=$1; shift 2
  cp "$T/previous" "$out"
  expect 1 "$(basename "$out").*(File too large|failed)" -- bash -c 'ulimit -f 16; exec "$@"' _ "$@"
  cmp -s "$T/previous" "$out" || fail "$* (disk full): $out was changed"
  [ -z "$(temps)" ] || fail "$* (disk full): temporary left: $(temps)"
}
full "$T/o.gguf" -- "$MIPR" convert "$BIN" -z "$TOK" -o "$T/o.gguf"
full "$T/o.mcal" -- "$MIPR" calibrate "$BIN" -z "$TOK" --text "$TXT" --tokens 3000 -o "$T/o.mcal"
full "$T/o.gguf" -- "$MIPR" prune "$BIN" -z "$TOK" --calib "$T/c.mcal" --ratio 0.3 \
  --criterion flap -o "$T/o.gguf" --report "$T/r.json"
cmp -s "$T/previous" "$T/r.json" || fail "prune (disk full): the report was changed"
finish
