#!/usr/bin/env bash
# bsp plot: finetune logs (CSV and JSON lines) to a well-formed SVG.
source "$E2E_LIB"

cat >a.csv <<'CSV'
epoch,epochs,lr,loss,train_acc,test_loss,test_acc,seconds,images_per_s
1,3,0.1,0.6,0.78,0.45,0.84,50,1200
2,3,0.05,0.4,0.86,0.38,0.87,50,1200
3,3,0.01,0.3,0.89,0.33,0.89,50,1200
CSV
cat >b.jsonl <<'JSON'
{"epoch":1,"epochs":2,"lr":0.1,"loss":0.7,"train_acc":0.75,"test_loss":null,"test_acc":null,"seconds":5,"images_per_s":9}
{"epoch":2,"epochs":2,"lr":0.1,"loss":0.9,"train_acc":0.5,"test_loss":null,"test_acc":null,"seconds":5,"images_per_s":9}
{"epoch":2,"epochs":2,"lr":0.1,"loss":0.5,"train_acc":0.82,"test_loss":null,"test_acc":null,"seconds":5,"images_per_s":9}
JSON
ok "$BSP" plot a.csv b.jsonl --svg p.svg --title "a & <b>"
CHECKS=$((CHECKS + 1))
xmllint --noout p.svg || fail "p.svg is not well-formed XML"
# Per chart: a's train and test lines and b's train line (b has no test
# values; its repeated epoch 2 keeps the later record): 6 lines in all.
CHECKS=$((CHECKS + 1))
[ "$(grep -c '<polyline' p.svg)" = 6 ] || fail "expected 6 polylines, got $(grep -c '<polyline' p.svg)"
# b's loss ends at 0.5, not the earlier record's 0.9: no y tick reaches 0.9.
CHECKS=$((CHECKS + 1))
grep -q '>0.9</text>' p.svg && fail "b's replaced epoch-2 record was drawn"
grep -q 'a &amp; &lt;b&gt;' p.svg || fail "the title is not escaped"
ok "$BSP" plot a.csv --svg - -v
CHECKS=$((CHECKS + 1))
xmllint --noout "$WORK/.out" || fail "--svg - is not well-formed XML"
# Rendered, where rsvg-convert is installed.
if command -v rsvg-convert >/dev/null; then
  CHECKS=$((CHECKS + 1))
  rsvg-convert p.svg -o p.png && [ -s p.png ] || fail "rsvg-convert cannot render p.svg"
fi

# Failures: one line, no output left behind.
err 2 plot "no output: give --svg FILE" "$BSP" plot a.csv
err 2 plot "log is required" "$BSP" plot --svg x.svg
err 1 plot "cannot read 'missing.csv'" "$BSP" plot a.csv missing.csv --svg x.svg
printf 'hello,world\n1,2\n' >bad.csv
err 1 plot "'bad.csv' line 1: not a bsp finetune --log file" "$BSP" plot bad.csv --svg x.svg
printf '{"loss": 1}\n' >bad.jsonl
err 1 plot "'bad.jsonl' line 1: no integer 'epoch'" "$BSP" plot bad.jsonl --svg x.svg
printf '{"epoch": 1,\n' >broken.jsonl
err 1 plot "'broken.jsonl' line 1" "$BSP" plot broken.jsonl --svg x.svg
: >empty.csv
err 1 plot "'empty.csv' holds no epochs" "$BSP" plot empty.csv --svg x.svg
no_file x.svg
no_temp_files .

finish
