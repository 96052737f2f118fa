#!/bin/bash
# Passkey at 1x on the live checkpoint of a run, every time a new checkpoint appears.
run=$1; last=-1
while true; do
  s=$(python3 -c "import json;print(json.load(open('$run/checkpoint/state.json'))['step'])" 2>/dev/null || echo -1)
  if [ "$s" != "$last" ] && [ "$s" != "-1" ]; then
    last=$s
    nice -n 5 /work/wt/h5/build/bin/attn passkey --ckpt $run --data /tmp/h12/pk129 --lengths 1x --depths 0,0.5,1 --trials 20 --filler repeat --threads 1 --out $run.pk-$s.json >/dev/null 2>&1
    python3 -c "
import json
r=json.load(open('$run.pk-$s.json'))
l=r['lengths'][0]
print('step $s', 'exact', l['correct'], '/', l['trials'], 'digits', round(sum(d['digit_accuracy'] for d in l['depths'])/len(l['depths']),3), 'key loss', round(sum(d['answer_loss'] for d in l['depths'])/len(l['depths']),3), flush=True)
" >> $run.monitor
  fi
  grep -q "final train loss" $run.log 2>/dev/null && [ "$s" != "-1" ] && [ -f $run.pk-$s.json ] && python3 -c "import json,sys;sys.exit(0 if json.load(open('$run/config.json'))['steps']-1==$s else 1)" && break
  sleep 30
done
